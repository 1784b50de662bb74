# Copies a checkpoint folder and sets max_position_embeddings (and optional rope_scaling) in its
# config.json, updating the manifest's size and sha256 so the copy verifies. RoPE has no position
# weights, so the model's weights are unchanged.
import hashlib, json, os, shutil, sys
src, dst, ctx = sys.argv[1], sys.argv[2], int(sys.argv[3])
scaling = json.loads(sys.argv[4]) if len(sys.argv) > 4 else None
shutil.rmtree(dst, ignore_errors=True); shutil.copytree(src, dst)
cfg = json.load(open(os.path.join(dst, "config.json")))
cfg["max_position_embeddings"] = ctx
if scaling: cfg["rope_scaling"] = scaling
data = json.dumps(cfg, indent=2).encode()
open(os.path.join(dst, "config.json"), "wb").write(data)
man = json.load(open(os.path.join(dst, "checkpoint.json")))
for f in man["files"]:
    if f["path"] == "config.json":
        f["bytes"] = len(data); f["sha256"] = hashlib.sha256(data).hexdigest()
open(os.path.join(dst, "checkpoint.json"), "w").write(json.dumps(man, indent=2))
