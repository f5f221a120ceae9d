_base_ = './base.py'
item5 = {{ _base_.item2.nope }}
