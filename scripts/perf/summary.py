# summary.py [FILTER]: median of the last 3 runs of each label in $PERF_DIR/results.jsonl.
import json,sys,statistics,collections
rows=collections.OrderedDict()
import os
for l in open(os.path.join(os.environ.get('PERF_DIR','/tmp/ringkv-perf'),'results.jsonl')):
    d=json.loads(l); rows.setdefault(d['label'],[]).append(d['r'])
filt=sys.argv[1] if len(sys.argv)>1 else ''
for k,rs in rows.items():
    if filt not in k: continue
    rs=rs[-3:]
    ops=[r['ops_per_sec'] for r in rs]
    m=statistics.median(ops)
    mid=sorted(rs,key=lambda r:r['ops_per_sec'])[len(rs)//2]
    errs=sum(sum(r['errors'].values()) for r in rs)
    print("%-32s median %7.0f/s  runs %s  p50 %6.2f p99 %6.2f ms  errs %d"%(k,m,"/".join("%.0f"%o for o in ops),statistics.median(r['p50_ms'] for r in rs),statistics.median(r['p99_ms'] for r in rs),errs))
