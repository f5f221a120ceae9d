# Child of base.py: a list is replaced, a dict merges, a bool is overridden.
_base_ = './base.py'
item1 = [2, 3]
item2 = dict(a=1)
item3 = False
