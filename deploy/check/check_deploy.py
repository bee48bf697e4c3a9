#!/usr/bin/python3
"""check_deploy.py — checks what can be checked of deploy/ without Docker or a running systemd.

Run by tools/check_deploy.sh (and so by `make test`). Each check prints `ok` or `FAIL` with
the reason; a tool that is missing here is a `skip`, said plainly, never a pass. Images are
neither built nor pulled (these machines cannot pull): the Dockerfile is linted and its
runtime package list is checked against the binary's NEEDED libraries instead.

usage: check_deploy.py REPO_ROOT GENPULSE_BINARY
"""
import glob
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

import yaml

ROOT, BIN = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
DEPLOY = os.path.join(ROOT, "deploy")
CHECK = os.path.join(DEPLOY, "check")
# Settings the deploy files may use ahead of the binary that has them (a note, not a failure).
# A name here that the binary does know is reported so it can be dropped from the set.
PENDING_SETTINGS = set()
# Libraries the ASan/UBSan build links that a release build does not.
SANITIZER_LIBS = re.compile(r"^lib(asan|ubsan|tsan|lsan)\.so")
# In every Debian image, slim included (Essential or required by libc6).
BASE_PACKAGES = {"libc6", "libgcc-s1"}
# Runtime packages that no NEEDED entry names but that are there on purpose.
INTENDED_EXTRAS = {"ca-certificates": "TLS roots for S3 and providers",
                   "curl": "the HEALTHCHECK", "espeak-ng-data": "voices, read at run time"}

results = {"ok": 0, "fail": 0, "skip": 0}


def report(kind, what, detail=""):
    results[kind] += 1
    print(f"  {kind.upper() if kind == 'fail' else kind}: {what}" + (f" — {detail}" if detail else ""))


def check(cond, what, detail=""):
    report("ok" if cond else "fail", what, "" if cond else detail)
    return cond


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


# ---- shared facts ---------------------------------------------------------------------------

def settings_from_binary():
    """GENPULSE_* names and defaults from `genpulse settings` (the generated table)."""
    out = run([BIN, "settings"]).stdout
    names = {}
    for m in re.finditer(r"^\| `--[a-z0-9-]+` \| `(GENPULSE_[A-Z0-9_]+)` \| `([^`]*)`", out, re.M):
        names[m.group(1)] = m.group(2)
    return names


def read_env_file(path):
    env = {}
    for line in open(path):
        line = line.strip()
        if line and not line.startswith("#"):
            k, _, v = line.partition("=")
            env[k.strip()] = v.strip()
    return env


def duration_s(text):
    """Compose/systemd durations: 45s, 1m30s, 500ms, or a bare number of seconds."""
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    units = {"ms": 0.001, "us": 1e-6, "ns": 1e-9, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|us|ns|sec|min|s|m|h)", text)
    if not parts or "".join(a + b for a, b in parts) != text.replace(" ", ""):
        raise ValueError(f"bad duration {text!r}")
    return sum(float(a) * units[b] for a, b in parts)


# ---- compose --------------------------------------------------------------------------------

INTERP = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])((?:[^{}]|\{[^{}]*\})*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)")


def interpolate(text, env, used, missing):
    """Compose's variable substitution: $$, ${V}, ${V:-d}, ${V-d}, ${V:?e}, ${V?e}, $V."""
    def sub(m):
        if m.group(0) == "$$":
            return "$$"  # kept: compose passes a literal $ to the container
        name = m.group(1) or m.group(4)
        used.add(name)
        op, arg = m.group(2), m.group(3) or ""
        val = env.get(name)
        if op in (":-", "-"):
            if val is None or (op == ":-" and val == ""):
                return interpolate(arg, env, used, missing)
            return val
        if op in (":?", "?"):
            if val is None or (op == ":?" and val == ""):
                missing.append(f"{name} ({arg})")
                return ""
            return val
        if val is None:
            missing.append(name)
            return ""
        return val
    return INTERP.sub(sub, text)


def check_compose(settings):
    print("compose: deploy/docker-compose.yml")
    path = os.path.join(DEPLOY, "docker-compose.yml")
    text = open(path).read()
    env = read_env_file(os.path.join(DEPLOY, ".env.example"))
    used, missing = set(), []
    doc = yaml.safe_load(interpolate(text, env, used, missing))
    check(not missing, "every variable it needs is in .env.example", ", ".join(missing))
    unused = sorted(set(env) - used - {"COMPOSE_PROJECT_NAME"})
    check(not unused, ".env.example sets nothing the compose file ignores", ", ".join(unused))

    try:
        import jsonschema
    except ImportError:
        report("skip", "Compose Specification schema", "python3-jsonschema is not installed")
    else:
        schema = json.load(open(os.path.join(CHECK, "compose-spec.json")))
        errs = sorted(jsonschema.Draft201909Validator(schema).iter_errors(doc), key=str)
        check(not errs, "valid against the Compose Specification schema (deploy/check/compose-spec.json)",
              "; ".join(f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errs[:5]))

    services = doc.get("services", {})
    oneshot = {n for n, s in services.items() if str(s.get("restart", "")) == "no"}
    for need in ("postgres", "redis", "minio", "minio-init", "migrate", "api", "worker"):
        check(need in services, f"service {need} exists")
    for name, svc in services.items():
        hc = svc.get("healthcheck") or {}
        if name in oneshot:
            continue
        check(hc.get("test") and not hc.get("disable"), f"{name}: has a healthcheck")
        for key in ("interval", "timeout", "start_period"):
            if key in hc:
                try:
                    duration_s(hc[key])
                except ValueError as e:
                    check(False, f"{name}: healthcheck {key}", str(e))
    for name, svc in services.items():
        deps = svc.get("depends_on") or {}
        if isinstance(deps, list):
            check(not deps, f"{name}: depends_on states conditions", "a bare list waits for nothing")
            continue
        for dep, cond in deps.items():
            c = (cond or {}).get("condition")
            if dep not in services:
                check(False, f"{name} depends on {dep}", "no such service")
            elif dep in oneshot:
                check(c == "service_completed_successfully", f"{name} waits for one-shot {dep} to succeed", f"condition {c}")
            else:
                check(c == "service_healthy", f"{name} waits for {dep} to be healthy", f"condition {c}")
    for name, svc in services.items():
        image = svc.get("image", "")
        if image and "build" not in svc:
            tag = image.rsplit("/", 1)[-1].partition(":")[2]
            check(tag and tag != "latest", f"{name}: image {image} is pinned to a tag")

    gp = {n: s for n, s in services.items() if (s.get("command") or [""])[0] in ("api", "worker", "migrate", "serve")}
    grace = float(env.get("GENPULSE_GRACE_PERIOD", settings.get("GENPULSE_GRACE_PERIOD", "30")))
    for name, svc in gp.items():
        e = svc.get("environment") or {}
        if name in oneshot:
            continue
        sgp = duration_s(str(svc.get("stop_grace_period", "10s")))
        g = float(e.get("GENPULSE_GRACE_PERIOD", grace))
        check(sgp > g, f"{name}: stop_grace_period ({sgp:g} s) is above the grace period ({g:g} s)")
        check(svc.get("init") is True, f"{name}: runs with an init (children reaped)")
    envs = {n: (s.get("environment") or {}) for n, s in gp.items()}
    for key in ("GENPULSE_DATABASE_URL", "GENPULSE_QUEUE_URL", "GENPULSE_STORAGE_URL", "GENPULSE_LINK_SECRET"):
        vals = {n: e.get(key) for n, e in envs.items()}
        check(all(vals.values()) and len(set(vals.values())) == 1,
              f"{key} is set and the same for {', '.join(sorted(vals))}", str(vals))
    secret = envs.get("api", {}).get("GENPULSE_LINK_SECRET", "")
    check(bool(re.fullmatch(r"[0-9a-f]{64}", secret)), "the .env.example link secret is 64 hex digits")
    check("postgres://" in envs.get("api", {}).get("GENPULSE_DATABASE_URL", ""), "api uses PostgreSQL")
    check(envs.get("api", {}).get("GENPULSE_STORAGE_URL", "").startswith("s3://"), "outputs go to S3 (reachable by every process)")
    names = set()
    for e in envs.values():
        names |= {k for k in e if k.startswith("GENPULSE_")}
    names |= {k for k in env if k.startswith("GENPULSE_")}
    check_setting_names("compose + .env.example", names, settings)

    dc = shutil.which("docker-compose")
    if dc:
        with tempfile.TemporaryDirectory() as tmp:
            envf = os.path.join(tmp, ".env")
            shutil.copy(os.path.join(DEPLOY, ".env.example"), envf)
            r = run([dc, "--env-file", envf, "-f", path, "config", "-q"])
            check(r.returncode == 0, "docker-compose 1.29 (Debian) `config -q` accepts it", (r.stderr or r.stdout).strip()[-400:])
            empty = os.path.join(tmp, "empty.env")
            open(empty, "w").close()
            r = run([dc, "--env-file", empty, "-f", path, "config", "-q"], cwd=tmp)
            check(r.returncode != 0 and "deploy/.env" in r.stderr,
                  "without deploy/.env it refuses to start and says what to set", r.stderr.strip()[-200:])
    else:
        report("skip", "docker-compose config", "docker-compose (Debian package) is not installed")
    report("skip", "docker compose up", "not run: images cannot be pulled on this machine")


def check_setting_names(where, names, settings):
    unknown = sorted(n for n in names if n not in settings and n not in PENDING_SETTINGS)
    check(not unknown, f"{where}: every GENPULSE_* name is a setting of {os.path.relpath(BIN, ROOT)}", ", ".join(unknown))
    for n in sorted(names & PENDING_SETTINGS):
        if n in settings:
            report("ok", f"{where}: {n} is now a setting (drop it from PENDING_SETTINGS)")
        else:
            print(f"  note: {where}: {n} is not a setting of this binary yet (it ignores it)")


# ---- Dockerfile -----------------------------------------------------------------------------

def dockerfile_instructions(path):
    out, cur = [], ""
    for line in open(path):
        s = line.rstrip("\n")
        if not cur and (s.lstrip().startswith("#") or not s.strip()):
            continue
        if cur and s.lstrip().startswith("#"):
            continue  # comment lines inside a continued instruction are dropped by the parser
        if s.endswith("\\"):
            cur += s[:-1] + " "
            continue
        cur += s
        word, _, rest = cur.strip().partition(" ")
        out.append((word.upper(), rest.strip()))
        cur = ""
    return out


def needed_packages():
    """Debian package of each NEEDED library of the binary (ldconfig, then one dpkg -S)."""
    r = run(["readelf", "-d", BIN])
    libs = [lib for lib in re.findall(r"\(NEEDED\).*\[(.+)\]", r.stdout) if not SANITIZER_LIBS.match(lib)]
    cache = run(["ldconfig", "-p"]).stdout
    paths = {}
    for lib in libs:
        m = re.search(r"^\s*" + re.escape(lib) + r" \(.*x86-64.*\) => (\S+)", cache, re.M) or \
            re.search(r"^\s*" + re.escape(lib) + r" .*=> (\S+)", cache, re.M)
        if m:  # usr-merged: dpkg may know the file under /lib or /usr/lib, by link or target
            p, real = m.group(1), os.path.realpath(m.group(1))
            paths[lib] = {p, real} | {q[4:] if q.startswith("/usr/") else "/usr" + q for q in (p, real)}
    owner = {}
    out = run(["dpkg", "-S"] + sorted(set().union(*paths.values()))).stdout if paths else ""
    for line in out.splitlines():
        pkg, _, path = line.partition(": ")
        owner[path.strip()] = pkg.split(":")[0].strip()
    pkgs, unresolved = {}, []
    for lib in libs:
        hit = [owner[p] for p in sorted(paths.get(lib, ())) if p in owner]
        if hit:
            pkgs[lib] = hit[0]
        else:
            unresolved.append(lib)
    return pkgs, unresolved


def depends_of(pkgs):
    """Direct Depends and Pre-Depends of installed packages, in one dpkg-query."""
    r = run(["dpkg-query", "-W", "-f=${Depends},${Pre-Depends}\n"] + sorted(pkgs))
    return {re.split(r"[ :(]", alt.strip())[0] for dep in r.stdout.replace("\n", ",").split(",")
            for alt in dep.split("|") if alt.strip()}


def check_dockerfile(settings):
    print("Dockerfile: deploy/Dockerfile")
    path = os.path.join(DEPLOY, "Dockerfile")
    ins = dockerfile_instructions(path)
    stages, cur = [], None
    for word, rest in ins:
        if word == "FROM":
            cur = {"from": rest, "ins": []}
            stages.append(cur)
        elif cur is not None:
            cur["ins"].append((word, rest))
    check(len(stages) >= 2, "multi-stage (build, runtime)")
    build, final = stages[0], stages[-1]
    check(re.search(r"debian:\$\{DEBIAN_RELEASE\}|debian:(bookworm|12)", build["from"]) is not None, "build stage is Debian 12", build["from"])
    check("-slim" in final["from"], "runtime stage is a slim image", final["from"])
    arg = re.search(r"^ARG DEBIAN_RELEASE=(\S+)", open(path).read(), re.M)
    check(arg and arg.group(1) in ("bookworm", "12"), "DEBIAN_RELEASE is bookworm (Debian 12)")
    check(any(w == "RUN" and "tools/deps.sh build" in r for w, r in build["ins"]),
          "build stage installs tools/deps.sh's build list")
    fin = dict()
    for w, r in final["ins"]:
        fin.setdefault(w, []).append(r)
    user = (fin.get("USER") or [""])[-1]
    check(re.fullmatch(r"[1-9]\d*(:\d+)?", user) is not None, f"runtime USER is numeric and not root ({user})")
    check(len(fin.get("HEALTHCHECK", [])) == 1 and "/health" in fin["HEALTHCHECK"][0], "runtime has one HEALTHCHECK on /health")
    check(fin.get("ENTRYPOINT") == ['["genpulse"]'], 'ENTRYPOINT ["genpulse"]', str(fin.get("ENTRYPOINT")))
    check(fin.get("CMD") == ['["serve"]'], 'CMD ["serve"]', str(fin.get("CMD")))
    check(any("8080" in e.split() for e in fin.get("EXPOSE", [])), "EXPOSE 8080")
    envnames = set()
    for e in fin.get("ENV", []):
        envnames |= set(re.findall(r"(GENPULSE_[A-Z0-9_]+)=", e))
    hc_names = set(re.findall(r"GENPULSE_[A-Z0-9_]+", " ".join(fin.get("HEALTHCHECK", []))))
    check_setting_names("Dockerfile", envnames | hc_names, settings)

    # The runtime packages must provide every library the binary links.
    runs = " ".join(r for w, r in final["ins"] if w == "RUN")
    m = re.search(r"apt-get install ((?:-\S+\s+)*)((?:[a-z0-9][a-z0-9.+-]+\s*)+)", runs)
    listed = set(m.group(2).split()) if m else set()
    check(m is not None and "--no-install-recommends" in m.group(1), "runtime apt-get install --no-install-recommends")
    pkgs, unresolved = needed_packages()
    check(not unresolved, "every NEEDED library of the binary maps to a Debian package", ", ".join(unresolved))
    reach = set(listed) | BASE_PACKAGES | depends_of(listed)
    missing = sorted({f"{p} (for {lib})" for lib, p in pkgs.items() if p not in reach})
    check(not missing, f"runtime packages cover the binary's {len(pkgs)} NEEDED libraries", ", ".join(missing))
    extra = sorted(p for p in listed if p not in pkgs.values() and p not in INTENDED_EXTRAS)
    check(not extra, "runtime installs no package the binary does not use", ", ".join(extra))
    if os.path.isdir("/var/lib/apt/lists") and glob.glob("/var/lib/apt/lists/*Packages*"):
        shown = run(["apt-cache", "show", "--no-all-versions"] + sorted(listed)).stdout
        gone = sorted(listed - set(re.findall(r"^Package: (\S+)", shown, re.M)))
        check(not gone, f"all {len(listed)} runtime packages exist in this Debian release", ", ".join(gone))
    else:
        report("skip", "runtime package names", "no apt lists here (run apt-get update)")

    check_dockerignore(path, build)
    lint_dockerfile(path)
    report("skip", "docker build", "not run: the base images cannot be pulled on this machine")


def ignore_regex(pat):
    pat = pat.strip().lstrip("/")
    out, i = "", 0
    while i < len(pat):
        if pat.startswith("**", i):
            out += ".*"
            i += 2
            if pat.startswith("/", i):
                out, i = out[:-2] + "(.*/)?", i + 1
        elif pat[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pat[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pat[i]), i + 1
    return re.compile(out + "(/.*)?$")


def check_dockerignore(dockerfile, build):
    """The context BuildKit sends for -f deploy/Dockerfile: Dockerfile.dockerignore's rules,
    last match wins, a matched directory takes its contents along."""
    ign = dockerfile + ".dockerignore"
    if not check(os.path.exists(ign), "deploy/Dockerfile.dockerignore exists"):
        return
    rules = []
    for line in open(ign):
        line = line.strip()
        if line and not line.startswith("#"):
            neg = line.startswith("!")
            rules.append((neg, ignore_regex(line[1:] if neg else line)))

    def included(p):
        inc = True
        for neg, rx in rules:
            if rx.match(p):
                inc = neg
        return inc
    files = run(["git", "ls-files"], cwd=ROOT).stdout.split()
    ctx = [f for f in files if included(f)]
    for bad in ("build/genpulse", "build-asan/obj/main.o", "data/genpulse.db", ".git/config",
                "tools/s3rver/node_modules/x.js", "deploy/.env", "tests/unit/test_x.c"):
        check(not included(bad), f"context leaves out {bad}")
    for w, r in build["ins"]:
        if w == "COPY" and "--from" not in r:
            srcs = r.split()[:-1]
            for s in srcs:
                s = s.rstrip("/")
                hit = [f for f in ctx if f == s or f.startswith(s + "/")]
                check(hit, f"context holds COPY {s}", "excluded by Dockerfile.dockerignore")
    # The build stage's make must find everything it needs in exactly that context.
    with tempfile.TemporaryDirectory() as tmp:
        for f in ctx:
            os.makedirs(os.path.join(tmp, os.path.dirname(f)), exist_ok=True)
            shutil.copy2(os.path.join(ROOT, f), os.path.join(tmp, f))
        r = run(["make", "-n", "BUILD=build-release", "build-release/genpulse"], cwd=tmp)
        check(r.returncode == 0, f"`make -n` of the release binary works in the {len(ctx)}-file context",
              (r.stderr or r.stdout).strip()[-300:])


def lint_dockerfile(path):
    npm, node = shutil.which("npm"), shutil.which("node")
    bin_ = os.path.join(CHECK, "node_modules", ".bin", "dockerfile-utils")
    if not os.path.exists(bin_):
        if not (npm and node):
            report("skip", "dockerfile-utils lint", "node/npm not installed")
            return
        r = run([npm, "ci", "--prefix", CHECK, "--silent", "--no-audit", "--no-fund"])
        if r.returncode != 0:
            check(False, "npm ci deploy/check (dockerfile-utils, pinned)", r.stderr.strip()[-300:])
            return
    r = run([node, bin_, "lint", path])
    check(r.returncode == 0 and not r.stdout.strip(), "dockerfile-utils lint: no error or warning", r.stdout.strip()[-600:])


# ---- systemd --------------------------------------------------------------------------------

def parse_unit(path):
    sections, cur = {}, None
    for line in open(path):
        line = line.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            cur = sections.setdefault(line.strip("[]"), [])
        else:
            k, _, v = line.partition("=")
            cur.append((k.strip(), v.strip()))
    return sections


def check_units(settings):
    print("systemd: deploy/systemd/")
    sd = os.path.join(DEPLOY, "systemd")
    env = read_env_file(os.path.join(sd, "genpulse.env.example"))
    grace = float(env.get("GENPULSE_GRACE_PERIOD", settings.get("GENPULSE_GRACE_PERIOD", "30")))
    check("GENPULSE_ADMIN_PORT" not in env, "the shared env file sets no admin port (api and workers would share it)")
    names = {k for k in env if k.startswith("GENPULSE_")}
    units = sorted(glob.glob(os.path.join(sd, "*.service")))
    for u in units:
        base = os.path.basename(u)
        svc = dict()
        for k, v in parse_unit(u).get("Service", []):
            svc.setdefault(k, []).append(v)
        one = lambda k: (svc.get(k) or [""])[-1]  # noqa: E731
        for e in svc.get("Environment", []):
            names |= set(re.findall(r"(GENPULSE_[A-Z0-9_]+)=", e))
        daemon = one("Type") != "oneshot"
        if daemon:
            check(one("Type") == "notify" and one("NotifyAccess") == "main", f"{base}: Type=notify, NotifyAccess=main")
            check(duration_s(one("WatchdogSec") or "0") > 0, f"{base}: WatchdogSec set")
            check(one("Restart") == "on-failure", f"{base}: Restart=on-failure")
            check(one("KillSignal") == "SIGTERM", f"{base}: KillSignal=SIGTERM")
            stop = duration_s(one("TimeoutStopSec") or "90s")
            check(stop > grace, f"{base}: TimeoutStopSec ({stop:g} s) above the grace period ({grace:g} s)")
        check("/etc/genpulse/genpulse.env" in svc.get("EnvironmentFile", []), f"{base}: EnvironmentFile=/etc/genpulse/genpulse.env")
        check(one("User") not in ("", "root", "0"), f"{base}: runs as a dedicated user ({one('User')})")
        datadir = re.search(r"GENPULSE_DATA_DIR=(\S+)", " ".join(svc.get("Environment", [])))
        datadir = datadir.group(1) if datadir else ""
        check(datadir and datadir in " ".join(svc.get("ReadWritePaths", [])) and
              datadir == "/var/lib/" + one("StateDirectory"), f"{base}: the data dir {datadir} is its StateDirectory and only ReadWritePath")
        want = {"NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes",
                "PrivateDevices": "yes", "CapabilityBoundingSet": ""}
        bad = [f"{k}={v}" for k, v in want.items() if one(k) != v or k not in svc]
        check(not bad, f"{base}: hardening ({', '.join(want)})", "missing or different: " + ", ".join(bad))
        ex = one("ExecStart").split()
        check(ex[:1] == ["/usr/local/bin/genpulse"] and len(ex) > 1, f"{base}: ExecStart runs /usr/local/bin/genpulse {ex[1] if len(ex) > 1 else ''}")
    check_setting_names("systemd units + genpulse.env.example", names, settings)

    sa = shutil.which("systemd-analyze")
    if not sa:
        report("skip", "systemd-analyze verify", "systemd is not installed")
        return
    # verify insists that ExecStart's program exists: point it at the binary under test.
    with tempfile.TemporaryDirectory() as tmp:
        targets = []
        for u in units:
            text = open(u).read().replace("/usr/local/bin/genpulse", BIN)
            open(os.path.join(tmp, os.path.basename(u)), "w").write(text)
            b = os.path.basename(u)
            targets.append(os.path.join(tmp, b.replace("@.", "@8091.") if "@." in b else b))
        r = run([sa, "verify", "--man=no"] + targets, cwd=tmp)
        out = (r.stdout + r.stderr).replace(tmp + "/", "")
        check(r.returncode == 0 and not out.strip(), f"systemd-analyze verify: {len(targets)} units, no warning", out.strip()[-600:])
        for t in targets:
            r = run([sa, "security", "--offline=yes", "--no-pager", t], cwd=tmp)
            m = re.search(r"Overall exposure level for \S+: ([0-9.]+) (\w+)", r.stdout + r.stderr)
            score = float(m.group(1)) if m else 99
            check(score <= 2.0, f"systemd-analyze security {os.path.basename(t)}: exposure {m.group(1) if m else '?'} {m.group(2) if m else ''} (at most 2.0)")
    check_notify_protocol(units)
    su = shutil.which("systemd-sysusers")
    if su:
        with tempfile.TemporaryDirectory() as tmp:
            os.makedirs(os.path.join(tmp, "etc"))
            r = run([su, "--dry-run", "--root", tmp, os.path.join(sd, "genpulse.sysusers")])
            check(r.returncode == 0 and "genpulse" in r.stderr + r.stdout, "systemd-sysusers --dry-run creates user genpulse", r.stderr.strip()[-300:])
    report("skip", "units started under systemd", "not run: PID 1 here is not systemd")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def check_notify_protocol(units):
    """Plays systemd's side of Type=notify + NotifyAccess=main + WatchdogSec= for `serve`: a
    NOTIFY_SOCKET that receives the sender's credentials, WATCHDOG_USEC, then SIGTERM. The
    interval is shortened to 2 s so that the check takes seconds, not the units' 30."""
    wd = 2.0
    with tempfile.TemporaryDirectory() as tmp:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(os.path.join(tmp, "notify"))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        sock.settimeout(0.2)
        env = dict(os.environ, NOTIFY_SOCKET=os.path.join(tmp, "notify"), WATCHDOG_USEC=str(int(wd * 1e6)))
        for k in [k for k in env if k.startswith("GENPULSE_")]:
            del env[k]
        p = subprocess.Popen([BIN, "serve", "--port", str(free_port()), "--data-dir", os.path.join(tmp, "data"),
                              "--concurrency", "2"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        got, t0 = [], time.time()

        def drain(until):
            while time.time() < until:
                try:
                    msg, anc, _, _ = sock.recvmsg(4096, socket.CMSG_SPACE(12))
                except socket.timeout:
                    continue
                pid = next((struct.unpack("iII", d)[0] for _, t, d in anc if t == socket.SCM_CREDENTIALS), None)
                got.extend((time.time() - t0, line.split("=")[0], pid) for line in msg.decode().split("\n") if line)
        try:
            drain(t0 + 3 * wd)
            p.send_signal(signal.SIGTERM)
            drain(time.time() + 1.5)
            rc = p.wait(timeout=60)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        kinds = [k for _, k, _ in got]
        ready = next((t for t, k, _ in got if k == "READY"), None)
        check(ready is not None and ready < 20, "serve sends READY=1 on NOTIFY_SOCKET (Type=notify)")
        pings = [t for t, k, _ in got if k == "WATCHDOG"]
        gaps = [b - a for a, b in zip(pings, pings[1:])]
        check(len(pings) >= 3 and max(gaps) < wd, f"WATCHDOG=1 more often than WATCHDOG_USEC ({len(pings)} in {3 * wd:g} s)",
              f"pings at {[round(t, 2) for t in pings]}")
        check("STOPPING" in kinds and rc == 0, "SIGTERM: STOPPING=1, then exit 0", f"{kinds}, exit {rc}")
        check(got and all(pid == p.pid for _, _, pid in got), "every message comes from the main pid (NotifyAccess=main)")


def main():
    if not os.access(BIN, os.X_OK):
        print(f"check_deploy: {BIN} is not an executable (build it first)")
        return 2
    settings = settings_from_binary()
    if not check(len(settings) > 20, f"read {len(settings)} settings from `{os.path.relpath(BIN, ROOT)} settings`"):
        return 1
    check_compose(settings)
    check_dockerfile(settings)
    check_units(settings)
    print(f"check_deploy: {results['ok']} passed, {results['fail']} failed, {results['skip']} skipped")
    return 1 if results["fail"] else 0


if __name__ == "__main__":
    sys.exit(main())
