item1 = [1, 2]
item2 = dict(a=0)
item3 = True
item4 = 'test'
item5 = dict(a=dict(b=[7, 8]))
item7 = dict(a=[0], b=dict(c=[3.1, 4.2, 5.3]))
