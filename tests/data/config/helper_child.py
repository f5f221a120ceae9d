# Redefining item_cfg does not reach item5; item6 is redeclared so it sees the new value.
_base_ = './helper_base.py'
item_cfg = dict(b=2)
item6 = dict(cfg=item_cfg)
