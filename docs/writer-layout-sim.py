"""What the SQLite writer does per delivery in `loadtest splunk`, replayed without the router,
to compare table and index layouts before building one.

Per 100 events: one transaction with the duplicate check and the multi-row INSERTs of the events
and their deliveries (as `store::events::ingest`), then one recording the batch's attempts (read
the deliveries, one UPDATE, one multi-row INSERT of attempts, as `store::deliveries::record`).
The schema is this checkout's SQLite migrations; a variant (names joined by `+`) changes it:
  base         as migrated            wr          events/deliveries/attempts WITHOUT ROWID
  noidx        without the five alert-log and retention indexes
  nostatus     without deliveries_by_status       partialdue  deliveries_due only over pending
  normal/off   synchronous=NORMAL/OFF (FULL as the router otherwise)   dry  no SQL (Python's own cost)
  ckpt         wal_autocheckpoint=10000
  notenant, noevent, noreq, norecv   without one alert-log or retention index each
  statusdone   deliveries_by_status only over finished deliveries (status <> 'pending')
  bychannel    an alert-log index (channel_id, id) on deliveries
  returning    successes recorded without the read: one UPDATE … RETURNING (tried, not kept)
Every 200 events it also runs the channel actor's due query once (a read, outside the writer's
transactions), as the BENCHMARKS.md numbers were counted with it.

  python3 docs/writer-layout-sim.py VARIANT [BATCHES]     # CPU and wall time per delivery (noisy)
Instruction counts are steadier than time on a shared machine: run it under
`valgrind --tool=callgrind` at 150 and at 450 batches and divide the difference by 30,000.
"""
import sqlite3, os, sys, time, json, glob
variant = sys.argv[1]; batches = int(sys.argv[2]) if len(sys.argv)>2 else 1500
path = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"writer-layout-{variant}.db")
for f in glob.glob(path+"*"): os.remove(f)
db = sqlite3.connect(path, isolation_level=None)
db.execute("PRAGMA journal_mode=WAL")
ups = sorted(glob.glob(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "migrations", "sqlite", "*", "up.sql")))
for u in ups: db.executescript(open(u).read())
V = set(variant.split("+"))
if "wr" in V:
    # rebuild events, deliveries, attempts WITHOUT ROWID
    db.execute("PRAGMA foreign_keys=OFF")
    for t in ["attempts","deliveries","events"]:
        sql = db.execute("select sql from sqlite_master where name=?", (t,)).fetchone()[0]
        idx = [r[0] for r in db.execute("select sql from sqlite_master where tbl_name=? and type='index' and sql is not null", (t,))]
        db.execute(f"DROP TABLE {t}")
        db.execute(sql + " WITHOUT ROWID")
        for i in idx: db.execute(i)
def drop(name): db.execute(f"DROP INDEX {name}")
if "noidx" in V:
    for n in ["deliveries_by_tenant","deliveries_by_event","deliveries_by_status","attempts_by_request","events_by_received_at"]: drop(n)
if "nostatus" in V: drop("deliveries_by_status")
if "notenant" in V: drop("deliveries_by_tenant")
if "noevent" in V: drop("deliveries_by_event")
if "noreq" in V: drop("attempts_by_request")
if "norecv" in V: drop("events_by_received_at")
if "partialdue" in V:
    drop("deliveries_due")
    db.execute("CREATE INDEX deliveries_due ON deliveries (channel_id, next_attempt_at) WHERE status = 'pending'")
if "statusdone" in V:
    drop("deliveries_by_status")
    db.execute("CREATE INDEX deliveries_by_status ON deliveries (status, id) WHERE status <> 'pending'")
if "bychannel" in V: db.execute("CREATE INDEX deliveries_by_channel ON deliveries (channel_id, id)")
db.execute("PRAGMA synchronous=" + ("NORMAL" if "normal" in V else "OFF" if "off" in V else "FULL"))
db.execute("PRAGMA foreign_keys=ON"); db.execute("PRAGMA cache_size=-32768"); db.execute("PRAGMA temp_store=MEMORY")
if "ckpt" in V: db.execute("PRAGMA wal_autocheckpoint=10000")
now = int(time.time()*1000)
db.execute("INSERT INTO tenants VALUES ('bench','Bench','x',0,0)")
db.execute("INSERT INTO channels (id,name,kind,url,enabled,headers,secret,created_at,updated_at,config) VALUES ('ch_1','c','splunk','http://x',1,'{}','s',0,0,'{}')")
payload = json.dumps({"type":"permission.external_share_created","data":{"site_url":"https://contoso.sharepoint.com/sites/Finance","resource_path":"Shared Documents/Q3 forecast.xlsx","permission_type":"specific_people_link","principal":"outsider@example.net","access_level":"edit"},"tenant":{"id":"bench","display_name":"Bench"},"x":"y"*100})
ulidc = [0]
def ulid(prefix):
    ulidc[0]+=1
    return prefix + "%010d" % (now) + "%016d" % ulidc[0]
ev_cols = "(id,event_type,severity,tenant_id,occurred_at,payload,received_at)"
ev_sql = f"INSERT INTO events {ev_cols} VALUES " + ",".join(["(?,?,?,?,?,?,?)"]*100)
dl_cols = "(id,event_id,channel_id,tenant_id,event_type,severity,status,attempt_count,next_attempt_at,last_status_code,last_error_kind,last_error,created_at,updated_at,scheduled_attempt_count,lease_owner,redeliver_from)"
dl_sql = f"INSERT INTO deliveries {dl_cols} VALUES " + ",".join(["("+",".join("?"*17)+")"]*100)
at_cols = "(delivery_id,number,triggered_by,started_at,duration_ms,status_code,error_kind,error,response_excerpt,request_id,request_size)"
at_sql = f"INSERT INTO attempts {at_cols} VALUES " + ",".join(["("+",".join("?"*11)+")"]*100)
seq=0
pending=[]
if "dry" in V:
    class R:
        def fetchall(self): return []
    class D:
        def execute(self,*a): return R()
    db=D()
t0=time.process_time(); w0=time.time()
for b in range(batches):
    evs=[]; dls=[]
    for i in range(100):
        seq+=1; eid=f"e{seq}"; did=ulid("dl_")
        evs += [eid,"permission.external_share_created","high","bench",now,payload,now]
        dls += [did,eid,"ch_1","bench","permission.external_share_created","high","pending",0,now,None,None,None,now,now,0,None,None]
        pending.append(did)
    ids=json.dumps([evs[i*7] for i in range(100)])
    db.execute("BEGIN IMMEDIATE")
    db.execute("SELECT id FROM events WHERE id IN (SELECT value FROM json_each(?))",(ids,)).fetchall()
    db.execute(ev_sql, evs); db.execute(dl_sql, dls)
    db.execute("COMMIT")
    if len(pending) >= 200 or b == batches-1:
        # the channel actor's fetch, then one recording transaction per request of 100
        db.execute("SELECT id,event_id,redeliver_from FROM deliveries WHERE channel_id=? AND status='pending' AND next_attempt_at<=? ORDER BY next_attempt_at, id LIMIT 100", ("ch_1", now)).fetchall()
        while pending:
            chunk, pending = pending[:100], pending[100:]
            js=json.dumps(chunk)
            db.execute("BEGIN IMMEDIATE")
            if "returning" in V:
                db.execute("UPDATE deliveries SET status='succeeded',attempt_count=attempt_count+1,scheduled_attempt_count=scheduled_attempt_count+1,next_attempt_at=NULL,last_status_code=?,last_error_kind=NULL,last_error=NULL,updated_at=?,lease_owner=NULL WHERE id IN (SELECT value FROM json_each(?)) AND status='pending' RETURNING id, attempt_count",(200,now,js)).fetchall()
            else:
                db.execute("SELECT id,status,attempt_count,scheduled_attempt_count,next_attempt_at,redeliver_from FROM deliveries WHERE id IN (SELECT value FROM json_each(?))",(js,)).fetchall()
                db.execute("UPDATE deliveries SET status=?,attempt_count=?,scheduled_attempt_count=?,next_attempt_at=?,last_status_code=?,last_error_kind=?,last_error=?,redeliver_from=?,updated_at=?,lease_owner=? WHERE id IN (SELECT value FROM json_each(?))",("succeeded",1,1,None,200,None,None,None,now,None,js))
            req=ulid("rq_"); ats=[]
            for d in chunk: ats += [d,1,"scheduled",now,3,200,None,None,'{"text":"Success","code":0}',req,40000]
            assert len(chunk) == 100, "each ingested batch adds 100 deliveries"
            db.execute(at_sql, ats)
            db.execute("COMMIT")
t1=time.process_time(); w1=time.time()
n=batches*100
print(f"{variant:30s} cpu/delivery {1e6*(t1-t0)/n:6.1f} us  wall/delivery {1e6*(w1-w0)/n:6.1f} us  ")
