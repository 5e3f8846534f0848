{#
  profile/numeric_bins.sql: the numeric part of reference_profile.sql (included there, not run alone): the
  common table expressions numeric_at_or_above and numeric_profile, each followed by a comma.

  Reads: reference_rows (the reference's numeric columns as double precision), numeric, edge_counts and
  the bound edges :<feature>__edge_<k> of reference_profile.sql.
  Output (numeric_profile): feature, kind, bin, bin_kind, lower_edge, upper_edge, category, bin_rows.
#}

{# Rows at or above each edge, every numeric feature in one scan: bin k is then "at or above edge k but
   not edge k+1", exactly "k edges <= value", with exact integer counts. Columns are named by the
   feature's position (n1_ge_0 ...) to stay within PostgreSQL's 63-character limit. A feature that is
   NULL in every reference row has no edges: its one bin 0 takes any value. #}
numeric_at_or_above as (
    select
        {%- for name in numeric %}
        {%- set n = loop.index %}
        count("{{ name }}") as n{{ n }}_ge_0,
        {%- for k in range(1, edge_counts[name] + 1) %}
        count(
            case when "{{ name }}" >= cast(:{{ name }}__edge_{{ k }} as double precision) then 1 end
        ) as n{{ n }}_ge_{{ k }},
        {%- endfor %}
        {%- endfor %}
        count(*) as reference_rows
    from reference_rows
),

numeric_profile as (
    {%- for name in numeric %}
    {%- set feature_loop = loop %}
    {%- set n = loop.index %}
    {%- set edges = edge_counts[name] %}
    {%- for k in range(0, edges + 1) %}
    select
        '{{ name }}' as feature,
        'numeric' as kind,
        {{ k }} as bin,
        'range' as bin_kind,
        {%- if k == 0 %}
        cast(null as double precision) as lower_edge,
        {%- else %}
        cast(:{{ name }}__edge_{{ k }} as double precision) as lower_edge,
        {%- endif %}
        {%- if k < edges %}
        cast(:{{ name }}__edge_{{ k + 1 }} as double precision) as upper_edge,
        {%- else %}
        cast(null as double precision) as upper_edge,
        {%- endif %}
        cast(null as varchar) as category,
        n{{ n }}_ge_{{ k }}{% if k < edges %} - n{{ n }}_ge_{{ k + 1 }}{% endif %} as bin_rows
    from numeric_at_or_above
    union all
    {%- endfor %}
    select
        '{{ name }}' as feature,
        'numeric' as kind,
        -1 as bin,
        'null' as bin_kind,
        cast(null as double precision) as lower_edge,
        cast(null as double precision) as upper_edge,
        cast(null as varchar) as category,
        reference_rows - n{{ n }}_ge_0 as bin_rows
    from numeric_at_or_above
    {%- if not feature_loop.last %}
    union all
    {%- endif %}
    {%- endfor %}
),
