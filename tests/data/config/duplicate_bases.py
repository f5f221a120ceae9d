_base_ = ['./base.py', './other_base.py']
item5 = 5
