_deprecation_ = dict(expected='child.py', reference='https://example.invalid/notes')
item1 = 1
