# Defines item1 again, so it cannot sit beside base.py in one _base_ list.
item1 = 'other'
item9 = 9
