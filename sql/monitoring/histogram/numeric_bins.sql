{#
  histogram/numeric_bins.sql: the numeric part of feature_histogram.sql (included there, not run alone):
  the common table expressions numeric_at_or_above and numeric_histogram, each followed by a comma.

  Reads: current_window (the window's rows), numeric, edge_counts, flag_type and the bound edges
  :<feature>__edge_<k> of feature_histogram.sql.
  Output (numeric_histogram): feature, bin, bin_rows.
#}

{# Rows at or above each edge, every numeric feature in one pass: bin k is then "at or above edge k but
   not edge k+1", which is exactly "k edges <= value". Comparing each column with bound constants is a
   vectorized scan; a range join on the bins, or edges read from a joined row, is several times slower,
   and this is the query that runs every hour over the whole window. flag_type is smallint on DuckDB
   (summing smallints is several times faster there than integers) and integer on PostgreSQL (which has
   no boolean-to-smallint cast); the counts are the same. Columns are named by the feature's position
   (n1_ge_0 ...) rather than its name, which keeps them within PostgreSQL's 63-character limit. #}
numeric_at_or_above as (
    select
        {%- for name in numeric %}
        {%- set n = loop.index %}
        count("{{ name }}") as n{{ n }}_ge_0,
        {%- for k in range(1, edge_counts[name] + 1) %}
        coalesce(
            sum(
                cast("{{ name }}" >= cast(:{{ name }}__edge_{{ k }} as double precision) as {{ flag_type }})
            ),
            0
        ) as n{{ n }}_ge_{{ k }},
        {%- endfor %}
        {%- endfor %}
        count(*) as window_rows
    from current_window
),

numeric_histogram as (
    {%- for name in numeric %}
    {%- set feature_loop = loop %}
    {%- set n = loop.index %}
    {%- for k in range(0, edge_counts[name] + 1) %}
    select
        '{{ name }}' as feature,
        {{ k }} as bin,
        n{{ n }}_ge_{{ k }}{% if k < edge_counts[name] %} - n{{ n }}_ge_{{ k + 1 }}{% endif %} as bin_rows
    from numeric_at_or_above
    union all
    {%- endfor %}
    select
        '{{ name }}' as feature,
        -1 as bin,
        window_rows - n{{ n }}_ge_0 as bin_rows
    from numeric_at_or_above
    {%- if not feature_loop.last %}
    union all
    {%- endif %}
    {%- endfor %}
),
