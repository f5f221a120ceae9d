# A .py child over a .json and a .yaml base.
_base_ = ['./mixed_base.json', './mixed_base.yaml']
item3 = dict(c=3)
