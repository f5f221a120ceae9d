# A dict over a base bool: mmcv raises TypeError and suggests _delete_.
_base_ = './base.py'
item3 = dict(a=1)
