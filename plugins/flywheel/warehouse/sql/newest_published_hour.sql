{# The newest hour build_features published (null before its first publication). #}
select max(hour) as newest
from features.published_hours
