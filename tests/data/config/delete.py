# _delete_=True replaces item1 wholesale; item2 merges as usual.
_base_ = './delete_base.py'
item1 = dict(a=0, _delete_=True)
item2 = dict(b=0)
item3 = dict(c=1, _delete_=True)
