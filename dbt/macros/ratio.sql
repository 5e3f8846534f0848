{% macro ratio(numerator, denominator) -%}
    {#- A share that is 0, never null, when there is nothing to divide by (the contract's CTR rule);
        the cast keeps PostgreSQL from dividing integers. -#}
    case
        when {{ denominator }} = 0 then 0.0
        else cast({{ numerator }} as double precision) / {{ denominator }}
    end
{%- endmacro %}
