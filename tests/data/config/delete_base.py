item1 = dict(a=1, b=2)
item2 = dict(a=0)
