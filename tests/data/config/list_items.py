item = [dict(a=0), dict(b=0, c=0)]
