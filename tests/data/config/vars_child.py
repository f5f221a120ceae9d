# Placeholders nested in containers, over a base that itself used placeholders.
_base_ = ['./vars.py']
item14 = {{ _base_.item8 }}
item15 = dict(
    a=dict(b={{ _base_.item2 }}),
    b=[{{ _base_.item3 }}],
    c=[{{ _base_.item4 }}],
    d=[[dict(e={{ _base_.item5.a }})], {{ _base_.item10 }}],
    e={{ _base_.item1 }},
)
