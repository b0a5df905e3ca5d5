"""The cluster deployment files (issue #16), checked offline and fast.

- Every manifest in ``deploy/kubernetes`` validates against Kubernetes' own schema at one pinned
  version, in strict mode (an unknown field is an error), with ``kubernetes-validate``.
- ``deploy/`` passes yamllint (the repository's ``.yamllint.yaml``, or the same rules inline).
- What a reviewer checks, as code: the grading Job is an Indexed Job whose shards are exactly
  ``0..N-1`` of ``N = completions = parallelism``; its command parses with the real command
  line of ``python -m autograder`` and uses JOB_COMPLETION_INDEX for ``--shard`` and ``--out``;
  register and export agree with it (the export gathers every shard); the gradebook's URL and
  password come from a Secret, and no literal credential appears anywhere; submissions are
  mounted read-only; every container has requests and limits, and the grader's memory limit
  lets each student kernel reach its own cap first; the pod security settings grant no more
  than the sandbox needs (below), and the pods that run no student code get none of it.
- The z2jh values: the keys used are documented keys of the targeted chart, the student image
  (never the grader's), nbgitpuller, the exchange volume at the path nbgrader is configured
  with, and the gradebook from a Secret for instructors only (the hub's hook is run against
  stand-in spawners).
- The Dockerfile: no layer of the students' image contains solutions/.

Every check is shown to fail: each mutant of MUTANTS (a deploy/ tree copied to tmp_path with
one thing broken) must be rejected with the expected message.

How the sandbox's needs were found (by hand, as root on the 2-core machine, not re-run here:
root only, minutes): ``python -m autograder grade`` on real ps1 submissions in the sandbox under
``setpriv --bounding-set -all,+CAP... --no-new-privs`` and a read-only root (a private mount
namespace with only /tmp, the output and the course's submitted/, autograded/ and feedback/
writable): with SANDBOX_CAPABILITIES the solution scores 18/22 and a looping submission ends
``timeout``; without any one of them the sandbox cannot start, or the student gets ``grading
error`` (SETUID, SETGID, CHOWN, FOWNER), or the run fails (DAC_OVERRIDE), or a kernel cannot be
interrupted at its time limits (KILL). bubblewrap's syscalls (``strace -f``): clone with new
mount, pid and network namespaces, 41 mount(2), 2 pivot_root(2); an EPERM injected into
pivot_root (what containerd's default seccomp profile answers) stops it. ``hostUsers: false``
was simulated (a user namespace mapping 0-65535 to 100000-165535 as the kubelet does, a
read-only container root made with pivot_root and a /proc masked as runc masks it, the same
capabilities and no_new_privs): the solution is graded in the sandbox there too, 18/22, with
the default procMount.
"""

from __future__ import annotations

import contextlib
import copy
import io
import os
import re
import shutil
import subprocess
import sys
import types
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
DEPLOY = REPO / "deploy"

# The oldest Kubernetes the manifests are written for, so the schema of exactly that version:
# 1.33 is the first release with Job's backoffLimitPerIndex GA and with user namespaces
# (hostUsers: false) on by default. A field that only a newer release knows fails here, and
# Kubernetes does not remove fields of batch/v1 or core/v1 in later releases.
KUBERNETES_VERSION = "1.33"

# What autograder/sandbox.py needs (module docstring: each one measured to be needed). The
# grading container may add these and nothing else; no other container may add any.
SANDBOX_CAPABILITIES = {"SYS_ADMIN", "NET_ADMIN", "SETUID", "SETGID", "CHOWN", "FOWNER",
                        "DAC_OVERRIDE", "KILL"}
# A grader's memory besides its student kernels, measured (ps1, --jobs 2, in the sandbox: the
# warm kernel servers, 2 judges, the grader, feedback workers), rounded up.
GRADER_MEMORY_BESIDES_STUDENTS = 2 * 2**30
EXCHANGE = "/srv/nbgrader/exchange"
JUPYTER_CONFIG_PATHS = ("/etc/jupyter/", "/usr/local/etc/jupyter/")

# The keys of the z2jh chart 4.4.0's values.schema.yaml under the objects config.yaml uses (all
# of them additionalProperties: false there), copied by hand from that tag.
Z2JH_VERSION = "4.4.0"
Z2JH_KEYS = {
    (): {"cull", "custom", "debug", "enabled", "fullnameOverride", "global", "httpRoute", "hub",
         "imagePullSecret", "imagePullSecrets", "ingress", "nameOverride", "prePuller", "proxy",
         "rbac", "scheduling", "singleuser"},
    ("hub",): {"activeServerLimit", "allowNamedServers", "annotations", "args", "authenticatePrometheus",
               "baseUrl", "command", "concurrentSpawnLimit", "config", "consecutiveFailureLimit",
               "containerSecurityContext", "cookieSecret", "db", "deploymentStrategy", "existingSecret",
               "extraConfig", "extraContainers", "extraEnv", "extraFiles", "extraPodSpec",
               "extraVolumeMounts", "extraVolumes", "fsGid", "image", "initContainers", "labels",
               "lifecycle", "livenessProbe", "loadRoles", "namedServerLimitPerUser", "networkPolicy",
               "nodeSelector", "pdb", "podSecurityContext", "readinessProbe", "redirectToServer",
               "resources", "revisionHistoryLimit", "service", "serviceAccount", "services",
               "shutdownOnLogout", "templatePaths", "templateVars", "tolerations"},
    ("singleuser",): {"allowPrivilegeEscalation", "cloudMetadata", "cmd", "cpu", "defaultUrl", "events",
                      "extraAnnotations", "extraContainers", "extraEnv", "extraFiles", "extraLabels",
                      "extraNodeAffinity", "extraPodAffinity", "extraPodAntiAffinity", "extraPodConfig",
                      "extraResource", "extraTolerations", "fsGid", "image", "initContainers",
                      "lifecycleHooks", "memory", "networkPolicy", "networkTools", "nodeSelector",
                      "podNameTemplate", "profileList", "serviceAccountName", "startTimeout", "storage",
                      "uid"},
    ("singleuser", "storage"): {"capacity", "dynamic", "extraLabels", "extraVolumeMounts", "extraVolumes",
                                "homeMountPath", "static", "type"},
    ("singleuser", "image"): {"name", "pullPolicy", "pullSecrets", "tag"},
    ("singleuser", "lifecycleHooks"): {"postStart", "preStop"},
    ("singleuser", "cpu"): {"guarantee", "limit"},
    ("singleuser", "memory"): {"guarantee", "limit"},
}
Z2JH_EXTRA_FILE_KEYS = {"binaryData", "data", "mode", "mountPath", "stringData"}

CREDENTIAL_URL = re.compile(r"postgres(ql)?(\+\w+)?://|://[^/\s@:]+:[^/\s@]+@", re.IGNORECASE)
SECRET_NAMES = re.compile(r"URL|PASSWORD|PASSWD|SECRET|TOKEN", re.IGNORECASE)


# ---------------------------------------------------------------------------------------------
# Loading

def load(path: Path) -> list[dict]:
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d]


def manifests(kdir: Path) -> dict[str, list[dict]]:
    return {p.name: load(p) for p in sorted(kdir.glob("*.yaml"))}


def jobs(kdir: Path) -> dict[str, dict]:
    """{'grade'|'register'|'export': the Job}, told apart by the autograder subcommand they run."""
    found = {}
    for docs in manifests(kdir).values():
        for doc in docs:
            if doc.get("kind") != "Job":
                continue
            cmd = containers(doc)[0].get("command", [])
            if cmd[1:3] == ["-m", "autograder"] and len(cmd) > 3:
                found[cmd[3]] = doc
    return found


def pod_spec(doc: dict) -> dict | None:
    spec = doc.get("spec") or {}
    if doc.get("kind") == "Pod":
        return spec
    return (spec.get("template") or {}).get("spec")


def containers(doc: dict) -> list[dict]:
    spec = pod_spec(doc) or {}
    return [*spec.get("initContainers", []), *spec.get("containers", [])]


def flag(cmd: list[str], name: str) -> str | None:
    return cmd[cmd.index(name) + 1] if name in cmd and cmd.index(name) + 1 < len(cmd) else None


def flag_values(cmd: list[str], name: str) -> list[str]:
    """The values of a flag that takes several (``--feedback A B C``)."""
    if name not in cmd:
        return []
    values = []
    for item in cmd[cmd.index(name) + 1:]:
        if item.startswith("--"):
            break
        values.append(item)
    return values


def env_of(container: dict) -> dict[str, dict]:
    return {e["name"]: e for e in container.get("env", [])}


def expand(text: str, env: dict[str, str]) -> str:
    """Kubernetes' $(VAR) expansion of command arguments."""
    return re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", lambda m: env.get(m.group(1), m.group(0)), text)


QUANTITY = re.compile(r"^([0-9.]+)(m|k|Ki|M|Mi|G|Gi|T|Ti)?$")
UNITS = {None: 1, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12,
         "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}


def quantity(value) -> float:
    match = QUANTITY.match(str(value))
    if not match:
        raise ValueError(f"not a Kubernetes quantity: {value!r}")
    return float(match.group(1)) * UNITS[match.group(2)]


def strings(node):
    """Every string in a parsed YAML document (keys and values)."""
    if isinstance(node, dict):
        for k, v in node.items():
            yield from strings(k)
            yield from strings(v)
    elif isinstance(node, list):
        for v in node:
            yield from strings(v)
    elif isinstance(node, str):
        yield node


# ---------------------------------------------------------------------------------------------
# The checks: each returns a list of problems (empty: fine)

def schema_problems(kdir: Path) -> list[str]:
    problems = []
    for name, docs in manifests(kdir).items():
        for doc in docs:
            try:
                kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
            except kubernetes_validate.ValidationError as exc:
                where = ".".join(str(p) for p in exc.path)
                problems.append(f"{name}: schema {KUBERNETES_VERSION} (strict): {where}: {exc.message}")
            except kubernetes_validate.SchemaNotFoundError as exc:
                # The command line only warns about this; an unknown kind is an error here.
                problems.append(f"{name}: {exc.message}")
    return problems


YAMLLINT_INLINE = """\
extends: default
rules:
  line-length:
    max: 120
  document-start: disable
  truthy:
    allowed-values: ["true", "false"]
    check-keys: false
"""


def yamllint_problems(root: Path) -> list[str]:
    config = REPO / ".yamllint.yaml"
    how = ["-c", str(config)] if config.exists() else ["-d", YAMLLINT_INLINE]
    proc = subprocess.run([sys.executable, "-m", "yamllint", "--strict", "-f", "parsable", *how, str(root)],
                          cwd=REPO, capture_output=True, text=True, timeout=120)  # ignore-from-file: .gitignore
    if proc.returncode == 0:
        return []
    return [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()] or [
        f"yamllint exited {proc.returncode}"]


def cli_problems(name: str, container: dict) -> list[str]:
    """The command, $(VAR)s expanded, must parse with python -m autograder's own parser."""
    import autograder.__main__ as cli

    cmd = container.get("command", [])
    if cmd[1:3] != ["-m", "autograder"]:
        return [f"{name}: the command is not `python -m autograder ...`: {cmd}"]
    env = {k: e.get("value", f"<{k}>") for k, e in env_of(container).items()}
    env.setdefault("JOB_COMPLETION_INDEX", "0")
    env["GRADEBOOK_URL"] = "postgresql://grader@db/gradebook"
    argv = [expand(a, env) for a in cmd[3:]]
    seen = []
    stubs = {f: (lambda args, f=f: seen.append((f, args)) or 0) for f in ("_grade", "_register", "_export")}
    saved = {f: getattr(cli, f) for f in stubs}
    try:
        for f, stub in stubs.items():
            setattr(cli, f, stub)
        errors = io.StringIO()
        try:
            with contextlib.redirect_stderr(errors):
                cli.main(argv)
        except SystemExit as exc:
            said = errors.getvalue().strip().splitlines()[-1:]
            return [f"{name}: python -m autograder rejects its command {argv} (exit {exc.code}): {said}"]
    finally:
        for f, original in saved.items():
            setattr(cli, f, original)
    return [] if seen else [f"{name}: the command runs no autograder subcommand"]


def job_problems(kdir: Path) -> list[str]:
    problems = []
    found = jobs(kdir)
    for needed in ("register", "grade", "export"):
        if needed not in found:
            problems.append(f"no Job runs `python -m autograder {needed}`")
    if problems:
        return problems
    grade, register, export = found["grade"], found["register"], found["export"]
    spec = grade["spec"]
    if spec.get("completionMode") != "Indexed":
        problems.append(f"grade: completionMode is {spec.get('completionMode')!r}, not Indexed")
    n = spec.get("completions")
    if not isinstance(n, int) or n < 1:
        problems.append(f"grade: completions {n!r} is not a number of shards")
        return problems
    if spec.get("parallelism") != n:
        problems.append(f"grade: parallelism {spec.get('parallelism')} != completions {n}")
    for kind, job in (("register", register), ("export", export)):
        if job["spec"].get("completionMode") == "Indexed" or job["spec"].get("completions", 1) != 1:
            problems.append(f"{kind}: must run once, not as shards")
    for kind, job in found.items():
        problems += cli_problems(kind, containers(job)[0])

    g = containers(grade)[0]
    cmd = g["command"]
    if flag(cmd, "--shard") != f"$(JOB_COMPLETION_INDEX)/{n}":
        problems.append(f"grade: --shard is {flag(cmd, '--shard')!r}, not $(JOB_COMPLETION_INDEX)/{n} "
                        f"(N = completions)")
    out = flag(cmd, "--out") or ""
    if "$(JOB_COMPLETION_INDEX)" not in out:
        problems.append(f"grade: --out {out!r} is the same folder for every shard")
    # --jobs: one kernel per CPU of the limit (os.cpu_count() would be the node's cores).
    cpu = ((g.get("resources") or {}).get("limits") or {}).get("cpu")
    jobs_flag = flag(cmd, "--jobs")
    if not (jobs_flag or "").isdigit() or cpu is None or int(jobs_flag) != quantity(cpu):
        problems.append(f"grade: --jobs {jobs_flag} must equal the CPU limit {cpu}")
        jobs_flag = None
    # Each student kernel must reach its own memory cap before the container reaches its limit
    # (cgroup v2: the kubelet kills the whole container).
    from autograder.grading import Limits
    from autograder.sandbox import TMPFS_BYTES

    memory = ((g.get("resources") or {}).get("limits") or {}).get("memory")
    if jobs_flag and memory:
        need = int(jobs_flag) * Limits().memory_bytes + TMPFS_BYTES + GRADER_MEMORY_BESIDES_STUDENTS
        if quantity(memory) < need:
            problems.append(f"grade: memory limit {memory} < {need / 2**30:.1f} GiB: --jobs x the kernel "
                            "cap + the sandbox's /tmp + the grader besides its student kernels")
    # The submissions: read-only, through the mount and the claim.
    submissions = cmd[5] if len(cmd) > 5 else None
    mounts = {m["mountPath"]: m for m in g.get("volumeMounts", [])}
    volumes = {v["name"]: v for v in (pod_spec(grade) or {}).get("volumes", [])}
    mount = mounts.get(submissions)
    if mount is None:
        problems.append(f"grade: the submissions {submissions!r} are not a mounted volume")
    else:
        if mount.get("readOnly") is not True:
            problems.append("grade: the submissions volume is mounted writable (readOnly: true)")
        claim = (volumes.get(mount["name"]) or {}).get("persistentVolumeClaim")
        if claim is None:
            problems.append("grade: the submissions are not a PersistentVolumeClaim")
        elif claim.get("readOnly") is not True:
            problems.append("grade: the submissions claim is not readOnly")
    # Each shard's own nbgrader folders under the course (kept across retries), never shared.
    course = flag(cmd, "--course") or "/course"
    for path, m in mounts.items():
        if path.startswith(course.rstrip("/") + "/") and not m.get("readOnly"):
            if "$(JOB_COMPLETION_INDEX)" not in m.get("subPathExpr", ""):
                problems.append(f"grade: {path} is writable and shared by all shards (subPathExpr with "
                                "$(JOB_COMPLETION_INDEX))")

    # The three agree: assignment, image, gradebook; the export gathers every shard's folder.
    def env_value(job, key):
        return (env_of(containers(job)[0]).get(key) or {}).get("value")

    for kind, job in (("register", register), ("export", export)):
        c = containers(job)[0]
        for what, mine, theirs in (("ASSIGNMENT", env_value(job, "ASSIGNMENT"), env_value(grade, "ASSIGNMENT")),
                                   ("image", c.get("image"), g.get("image")),
                                   ("--db", flag(c["command"], "--db"), flag(cmd, "--db"))):
            if mine != theirs:
                problems.append(f"{kind}: {what} {mine!r} differs from the grading Job's {theirs!r}")
    expected = [out.replace("$(JOB_COMPLETION_INDEX)", str(k)) for k in range(n)]
    gathered = flag_values(containers(export)[0]["command"], "--feedback")
    if gathered != expected:
        problems.append(f"export: --feedback {gathered} is not every shard's --out {expected}")
    return problems


def secret_problems(kdir: Path) -> list[str]:
    problems = []
    for name, docs in manifests(kdir).items():
        for doc in docs:
            for text in strings(doc):
                if CREDENTIAL_URL.search(text):
                    problems.append(f"{name}: a literal database URL or credential: {text!r}")
            for c in containers(doc):
                env = env_of(c)
                cmd = c.get("command", []) + c.get("args", [])
                if "--db" in cmd:
                    if flag(cmd, "--db") != "$(GRADEBOOK_URL)":
                        problems.append(f"{name}: --db is {flag(cmd, '--db')!r}, not $(GRADEBOOK_URL)")
                    if "GRADEBOOK_URL" not in env:
                        problems.append(f"{name}: GRADEBOOK_URL is not set")
                for key, e in env.items():
                    if key in ("GRADEBOOK_URL", "PGPASSWORD") or SECRET_NAMES.search(key):
                        if "value" in e or "secretKeyRef" not in (e.get("valueFrom") or {}):
                            problems.append(f"{name}: {key} must come from a Secret (valueFrom.secretKeyRef)")
    return problems


def resource_problems(kdir: Path) -> list[str]:
    problems = []
    for name, docs in manifests(kdir).items():
        for doc in docs:
            for c in containers(doc):
                res = c.get("resources") or {}
                for kind in ("requests", "limits"):
                    for what in ("cpu", "memory"):
                        if what not in (res.get(kind) or {}):
                            problems.append(f"{name}/{c['name']}: no {kind}.{what}")
                for what, req in (res.get("requests") or {}).items():
                    lim = (res.get("limits") or {}).get(what)
                    if lim is not None and quantity(req) > quantity(lim):
                        problems.append(f"{name}/{c['name']}: requests.{what} {req} > limits.{what} {lim}")
    return problems


def runs_sandbox(container: dict) -> bool:
    cmd = container.get("command", [])
    return cmd[1:4] == ["-m", "autograder", "grade"] and "--no-sandbox" not in cmd


def security_problems(kdir: Path) -> list[str]:
    from autograder.sandbox import configured_kernel_uids, parse_uid_range

    problems = []
    for name, docs in manifests(kdir).items():
        for doc in docs:
            spec = pod_spec(doc)
            if spec is None:
                continue
            psc = spec.get("securityContext") or {}
            for key in ("hostNetwork", "hostPID", "hostIPC"):
                if spec.get(key):
                    problems.append(f"{name}: {key}: true")
            if any("hostPath" in v for v in spec.get("volumes", [])):
                problems.append(f"{name}: a hostPath volume")
            if spec.get("automountServiceAccountToken") is not False:
                problems.append(f"{name}: a service account token is mounted (automountServiceAccountToken: false)")
            if spec.get("hostUsers") is False and any(runs_sandbox(c) for c in containers(doc)):
                given = [flag(c["command"], "--kernel-uids") for c in containers(doc) if runs_sandbox(c)]
                uids = parse_uid_range(given[0]) if given[0] else configured_kernel_uids()
                if uids.start < 0 or uids.stop > 65536:
                    problems.append(f"{name}: hostUsers: false maps uids 0-65535 only, the kernels use "
                                    f"{uids.start}-{uids.stop - 1}")
            for c in containers(doc):
                sc = c.get("securityContext") or {}
                who = f"{name}/{c['name']}"
                sandbox = runs_sandbox(c)
                if sc.get("privileged"):
                    problems.append(f"{who}: privileged: true (the sandbox needs only its capabilities)")
                if sc.get("allowPrivilegeEscalation") is not False:
                    problems.append(f"{who}: allowPrivilegeEscalation is not false")
                caps = sc.get("capabilities") or {}
                if "ALL" not in caps.get("drop", []):
                    problems.append(f"{who}: capabilities.drop does not list ALL")
                added = caps.get("add", [])
                if sc.get("allowPrivilegeEscalation") is False and "CAP_SYS_ADMIN" in added:
                    problems.append(f"{who}: the API refuses allowPrivilegeEscalation: false with CAP_SYS_ADMIN")
                allowed = SANDBOX_CAPABILITIES if sandbox else set()
                extra = sorted({a.removeprefix("CAP_") for a in added} - allowed)
                if extra:
                    problems.append(f"{who}: adds capabilities the {'sandbox' if sandbox else 'container'} "
                                    f"does not need: {extra}")
                if sc.get("readOnlyRootFilesystem") is not True:
                    problems.append(f"{who}: readOnlyRootFilesystem is not true")
                elif not any(m["mountPath"] == "/tmp" for m in c.get("volumeMounts", [])):
                    problems.append(f"{who}: read-only root and no /tmp volume (the judges' kernel server "
                                    "needs a writable /tmp)")
                user = sc.get("runAsUser", psc.get("runAsUser"))
                if sandbox and user != 0:
                    problems.append(f"{who}: runs as {user}, the sandbox refuses to start unless root")
                for what in ("seccompProfile", "appArmorProfile"):
                    kind = (sc.get(what) or psc.get(what) or {}).get("type")
                    if kind == "Unconfined" and not sandbox:
                        problems.append(f"{who}: {what} Unconfined, but it runs no sandbox")
    return problems


def hub_problems(config_path: Path) -> list[str]:
    problems = []
    values = load(config_path)[0]

    def walk(node, path=()):
        if path in Z2JH_KEYS and isinstance(node, dict):
            for key in node:
                if key not in Z2JH_KEYS[path]:
                    problems.append(f"z2jh {Z2JH_VERSION}: {'.'.join(path + (key,))} is not a documented key")
                walk(node[key], path + (key,))

    walk(values)
    hub, single = values.get("hub") or {}, values.get("singleuser") or {}
    for key in (hub.get("config") or {}):
        if not key[:1].isupper():
            problems.append(f"hub.config.{key}: keys are class names (z2jh's schema: ^[A-Z])")
    for key, item in (single.get("extraFiles") or {}).items():
        for k in set(item) - Z2JH_EXTRA_FILE_KEYS:
            problems.append(f"singleuser.extraFiles.{key}.{k} is not a documented key")
    image = single.get("image") or {}
    if not image.get("name") or not image.get("tag"):
        problems.append("singleuser.image needs name and tag")
    elif "grader" in image["name"]:
        problems.append(f"singleuser.image {image['name']} is the grader's image (solutions/) for every student")
    hook = (((single.get("lifecycleHooks") or {}).get("postStart") or {}).get("exec") or {}).get("command") or []
    if hook[:1] != ["gitpuller"] or len(hook) != 4:
        problems.append(f"singleuser.lifecycleHooks.postStart does not run `gitpuller REPO BRANCH DIR`: {hook}")
    storage = single.get("storage") or {}
    volumes = {v["name"]: v for v in storage.get("extraVolumes") or []}
    exchange = [m for m in storage.get("extraVolumeMounts") or [] if m.get("mountPath") == EXCHANGE]
    if not exchange:
        problems.append(f"no volume is mounted at {EXCHANGE}")
    elif "persistentVolumeClaim" not in (volumes.get(exchange[0]["name"]) or {}):
        problems.append(f"{EXCHANGE} is not a PersistentVolumeClaim shared by the servers")

    # The servers' nbgrader config: the exchange there; the gradebook only when GRADEBOOK_URL is set.
    files = [f for f in (single.get("extraFiles") or {}).values()
             if f.get("mountPath", "").endswith("/nbgrader_config.py")]
    if not files or not files[0]["mountPath"].startswith(JUPYTER_CONFIG_PATHS):
        problems.append("no nbgrader_config.py in a Jupyter config folder (singleuser.extraFiles)")
    else:
        source = files[0].get("stringData", "")
        url = "postgresql://teacher@db.example/gradebook"
        without, with_url = nbgrader_config(source, {}), nbgrader_config(source, {"GRADEBOOK_URL": url})
        if with_url.Exchange.get("root") != EXCHANGE:
            problems.append(f"nbgrader_config.py: c.Exchange.root is {with_url.Exchange.get('root')!r}, "
                            f"the volume is at {EXCHANGE}")
        if with_url.CourseDirectory.get("db_url") != url:
            problems.append("nbgrader_config.py: c.CourseDirectory.db_url is not GRADEBOOK_URL")
        if "db_url" in without.CourseDirectory:
            problems.append("nbgrader_config.py: a gradebook for users without GRADEBOOK_URL")

    # The hub's hook: instructors get the grader image and GRADEBOOK_URL from a Secret; students nothing.
    student, teacher = run_spawn_hook(hub, groups=[]), run_spawn_hook(hub, groups=["instructors"])
    if student is None:
        problems.append("hub.extraConfig sets no c.KubeSpawner.pre_spawn_hook")
    else:
        if student.environment or student.image:
            problems.append(f"the hook gives students {student.environment or student.image}")
        for key in ("GRADEBOOK_URL", "PGPASSWORD"):
            value = teacher.environment.get(key)
            if not isinstance(value, dict) or "secretKeyRef" not in value.get("valueFrom", {}):
                problems.append(f"instructors' {key} is not from a Secret: {value!r}")
        if "grader" not in (teacher.image or ""):
            problems.append(f"instructors get the image {teacher.image!r}, not the grader's")
    for text in strings(values):
        if re.search(r"://[^/\s@:]+:[^/\s@]+@", text):
            problems.append(f"config.yaml: a literal credential: {text!r}")
    return problems


def nbgrader_config(source: str, environ: dict[str, str]):
    """Run an nbgrader_config.py as nbgrader does, in an environment of exactly ``environ``."""
    from unittest import mock

    from traitlets.config import Config

    config = Config()
    with mock.patch.dict(os.environ, environ, clear=True):
        exec(compile(source, "nbgrader_config.py", "exec"), {"get_config": lambda: config})  # noqa: S102
    return config


def run_spawn_hook(hub: dict, groups: list[str]):
    """Run hub.extraConfig as JupyterHub would (a traitlets config ``c``), then its pre-spawn hook
    on a stand-in spawner of a user in ``groups``; the spawner afterwards, or None if no hook."""
    from traitlets.config import Config

    c = Config()
    for name, source in sorted((hub.get("extraConfig") or {}).items()):
        exec(compile(source, name, "exec"), {"c": c, "get_config": lambda: c})  # noqa: S102
    hook = c.KubeSpawner.get("pre_spawn_hook")
    if hook is None:
        return None
    user = types.SimpleNamespace(groups=[types.SimpleNamespace(name=g) for g in groups], name="someone")
    spawner = types.SimpleNamespace(user=user, environment={}, image=None, extra_labels={})
    hook(spawner)
    return spawner


def dockerfile_problems(path: Path, kdir: Path, config_path: Path) -> list[str]:
    problems = []
    stages: dict[str, list[str]] = {}
    current = None
    for line in path.read_text().splitlines():
        words = line.split()
        if words[:1] == ["FROM"]:
            current = words[3] if len(words) >= 4 and words[2].upper() == "AS" else words[1]
            stages[current] = []
        elif current and words and not line.startswith("#"):
            stages[current].append(line)
    for target in ("student", "grader"):
        if target not in stages:
            problems.append(f"Dockerfile: no stage {target!r}")
    if problems:
        return problems
    body = "\n".join(stages["student"])
    for line in stages["student"]:
        words = line.split()
        if words[:1] in (["COPY"], ["ADD"]):
            sources = [w for w in words[1:-1] if not w.startswith("--")]
            if any(s in (".", "./") or s.rstrip("/") == "solutions" for s in sources):
                problems.append(f"Dockerfile: the students' image copies the hidden tests: {line.strip()}")
    for needed in ("make sysdeps", "make env"):
        if needed not in body:
            problems.append(f"Dockerfile: the image is not made with `{needed}` (the Makefile's way)")
    if not any(l.split()[:2] == ["COPY", "solutions/"] for l in stages["grader"]):
        problems.append("Dockerfile: the grader's image has no solutions/")
    for name, job in jobs(kdir).items():
        if "dlcourse-grader" not in containers(job)[0].get("image", ""):
            problems.append(f"{name}: not the grader image")
    hub_image = ((load(config_path)[0].get("singleuser") or {}).get("image") or {}).get("name", "")
    if not hub_image.endswith("/dlcourse"):
        problems.append(f"the hub's image {hub_image!r} is not the students' image")
    return problems


# ---------------------------------------------------------------------------------------------
# The real files

def test_manifests_exist():
    names = set(manifests(DEPLOY / "kubernetes"))
    assert {"grade-job.yaml", "register-job.yaml", "export-job.yaml"} <= names


def test_kubernetes_version_is_one_kubernetes_validate_ships():
    assert KUBERNETES_VERSION in {kubernetes_validate.utils.major_minor(v)
                                  for v in kubernetes_validate.utils.all_versions()}


def test_schema_strict():
    assert schema_problems(DEPLOY / "kubernetes") == []


def test_yamllint():
    assert yamllint_problems(DEPLOY) == []


def test_jobs():
    assert job_problems(DEPLOY / "kubernetes") == []


def test_gradebook_credentials_come_from_a_secret():
    assert secret_problems(DEPLOY / "kubernetes") == []


def test_resources():
    assert resource_problems(DEPLOY / "kubernetes") == []


def test_pod_security_no_more_than_the_sandbox_needs():
    assert security_problems(DEPLOY / "kubernetes") == []


def test_jupyterhub_config():
    assert hub_problems(DEPLOY / "jupyterhub" / "config.yaml") == []


def test_dockerfile():
    assert dockerfile_problems(DEPLOY / "Dockerfile", DEPLOY / "kubernetes",
                               DEPLOY / "jupyterhub" / "config.yaml") == []


def test_the_hub_image_has_what_the_hub_runs():
    lock = (REPO / "requirements.lock").read_text()
    assert re.search(r"^jupyterhub==5\.", lock, re.M) and re.search(r"^nbgitpuller==", lock, re.M)


# ---------------------------------------------------------------------------------------------
# Every check rejects a broken file: (id, file under deploy/, change, checker, expected message)

def _grade(docs):
    return next(d for d in docs if d.get("kind") == "Job")


def _gc(docs):
    return containers(_grade(docs))[0]


def _set_flag(docs, name, value):
    cmd = _gc(docs)["command"]
    cmd[cmd.index(name) + 1] = value


def _env(docs, key, entry):
    c = _gc(docs)
    c["env"] = [e for e in c["env"] if e["name"] != key] + [{"name": key, **entry}]


def _mount(docs, path):
    return next(m for m in _gc(docs)["volumeMounts"] if m["mountPath"] == path)


def _sc(docs):
    return _gc(docs).setdefault("securityContext", {})


def _hub_file(values):
    return values["singleuser"]["extraFiles"]["nbgrader-config"]


GRADE, REGISTER, EXPORT = "kubernetes/grade-job.yaml", "kubernetes/register-job.yaml", "kubernetes/export-job.yaml"
HUB = "jupyterhub/config.yaml"

MUTANTS = [
    # strict schema of the pinned version
    ("unknown-field", GRADE, lambda d: _grade(d)["spec"].update(completionz=4), "schema", "completionz"),
    ("unknown-container-field", GRADE, lambda d: _sc(d).update(privilegd=True), "schema", "privilegd"),
    ("wrong-type", GRADE, lambda d: _grade(d)["spec"].update(parallelism="four"), "schema", "four"),
    ("unknown-kind", REGISTER, lambda d: d[0].update(kind="Jobb"), "schema", "Couldn't find schema"),
    # the Indexed Job and its shards
    ("completions-ne-parallelism", GRADE, lambda d: _grade(d)["spec"].update(parallelism=3), "jobs",
     "parallelism 3 != completions 4"),
    ("not-indexed", GRADE, lambda d: _grade(d)["spec"].update(completionMode="NonIndexed"), "jobs",
     "not Indexed"),
    ("shard-n-ne-completions", GRADE, lambda d: _set_flag(d, "--shard", "$(JOB_COMPLETION_INDEX)/3"), "jobs",
     "--shard is '$(JOB_COMPLETION_INDEX)/3'"),
    ("shard-without-index", GRADE, lambda d: _set_flag(d, "--shard", "0/4"), "jobs", "--shard is '0/4'"),
    ("same-out-for-all", GRADE, lambda d: _set_flag(d, "--out", "/out/class"), "jobs", "same folder"),
    ("cli-unknown-flag", GRADE, lambda d: _gc(d)["command"].append("--shards"), "jobs", "rejects its command"),
    ("cli-missing-required-flag", REGISTER,
     lambda d: _gc(d).update(command=[a for a in _gc(d)["command"] if a not in ("--db", "$(GRADEBOOK_URL)")]),
     "jobs", "python -m autograder rejects its command"),
    ("jobs-ne-cpu", GRADE, lambda d: _set_flag(d, "--jobs", "8"), "jobs", "--jobs 8 must equal the CPU limit"),
    ("memory-below-kernel-caps", GRADE, lambda d: _gc(d)["resources"]["limits"].update(memory="6Gi"), "jobs",
     "memory limit 6Gi"),
    ("submissions-writable", GRADE, lambda d: _mount(d, "/submissions").update(readOnly=False), "jobs",
     "mounted writable"),
    ("submissions-claim-writable", GRADE,
     lambda d: pod_spec(_grade(d))["volumes"][0]["persistentVolumeClaim"].pop("readOnly"), "jobs",
     "claim is not readOnly"),
    ("shared-course-state", GRADE, lambda d: _mount(d, "/course/autograded").update(subPathExpr="state/autograded"),
     "jobs", "/course/autograded is writable and shared"),
    ("export-misses-a-shard", EXPORT, lambda d: _gc(d)["command"].remove("/out/shard-3"), "jobs",
     "is not every shard's --out"),
    ("register-other-assignment", REGISTER, lambda d: _env(d, "ASSIGNMENT", {"value": "ps2-overfitting"}),
     "jobs", "ASSIGNMENT 'ps2-overfitting' differs"),
    # the gradebook's credentials
    ("literal-gradebook-url", GRADE,
     lambda d: _env(d, "GRADEBOOK_URL", {"value": "postgresql://grader:hunter2@db/gradebook"}), "secrets",
     "GRADEBOOK_URL must come from a Secret"),
    ("literal-password", GRADE, lambda d: _env(d, "PGPASSWORD", {"value": "hunter2"}), "secrets",
     "PGPASSWORD must come from a Secret"),
    ("password-in-command", EXPORT, lambda d: _set_flag(d, "--db", "postgresql://grader:hunter2@db/gradebook"),
     "secrets", "a literal database URL"),
    ("configmap-not-secret", REGISTER,
     lambda d: _env(d, "GRADEBOOK_URL", {"valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "url"}}}),
     "secrets", "GRADEBOOK_URL must come from a Secret"),
    # resources
    ("no-limits", REGISTER, lambda d: _gc(d)["resources"].pop("limits"), "resources", "no limits.cpu"),
    ("request-above-limit", EXPORT, lambda d: _gc(d)["resources"]["requests"].update(memory="4Gi"), "resources",
     "requests.memory 4Gi > limits.memory 2Gi"),
    # pod security
    ("privileged", GRADE, lambda d: _sc(d).update(privileged=True), "security", "privileged: true"),
    ("extra-capability", GRADE, lambda d: _sc(d)["capabilities"]["add"].append("SYS_PTRACE"), "security",
     "['SYS_PTRACE']"),
    ("cap-prefix-spelling", GRADE, lambda d: _sc(d)["capabilities"]["add"].append("CAP_SYS_ADMIN"), "security",
     "refuses allowPrivilegeEscalation: false with CAP_SYS_ADMIN"),
    ("no-drop-all", GRADE, lambda d: _sc(d)["capabilities"].pop("drop"), "security", "does not list ALL"),
    ("escalation", GRADE, lambda d: _sc(d).update(allowPrivilegeEscalation=True), "security",
     "allowPrivilegeEscalation is not false"),
    ("writable-root", GRADE, lambda d: _sc(d).update(readOnlyRootFilesystem=False), "security",
     "readOnlyRootFilesystem is not true"),
    ("no-tmp", GRADE, lambda d: _gc(d).update(volumeMounts=[m for m in _gc(d)["volumeMounts"]
                                                            if m["mountPath"] != "/tmp"]), "security",
     "no /tmp volume"),
    ("grader-not-root", GRADE, lambda d: pod_spec(_grade(d))["securityContext"].update(runAsUser=1000,
                                                                                       runAsNonRoot=True),
     "security", "the sandbox refuses to start unless root"),
    ("host-pid", GRADE, lambda d: pod_spec(_grade(d)).update(hostPID=True), "security", "hostPID: true"),
    ("service-account-token", GRADE, lambda d: pod_spec(_grade(d)).pop("automountServiceAccountToken"),
     "security", "service account token"),
    ("register-with-capability", REGISTER, lambda d: _sc(d)["capabilities"].update(add=["SYS_ADMIN"]),
     "security", "does not need: ['SYS_ADMIN']"),
    ("export-unconfined", EXPORT,
     lambda d: pod_spec(_grade(d))["securityContext"].update(seccompProfile={"type": "Unconfined"}),
     "security", "seccompProfile Unconfined, but it runs no sandbox"),
    # the JupyterHub values
    ("hub-undocumented-key", HUB,
     lambda v: v["singleuser"]["storage"].update(extraVolumeMount=v["singleuser"]["storage"].pop("extraVolumeMounts")),
     "hub", "singleuser.storage.extraVolumeMount is not a documented key"),
    ("hub-grader-image", HUB, lambda v: v["singleuser"]["image"].update(name="REGISTRY/dlcourse-grader"), "hub",
     "is the grader's image"),
    ("hub-no-gitpuller", HUB, lambda v: v["singleuser"].pop("lifecycleHooks"), "hub", "gitpuller"),
    ("hub-exchange-elsewhere", HUB,
     lambda v: v["singleuser"]["storage"]["extraVolumeMounts"][0].update(mountPath="/srv/exchange"), "hub",
     f"no volume is mounted at {EXCHANGE}"),
    ("hub-exchange-root-mismatch", HUB,
     lambda v: _hub_file(v).update(stringData=_hub_file(v)["stringData"].replace(EXCHANGE, "/tmp/exchange")),
     "hub", "c.Exchange.root is '/tmp/exchange'"),
    ("hub-gradebook-for-everyone", HUB,
     lambda v: _hub_file(v).update(stringData=_hub_file(v)["stringData"] + '\nc.CourseDirectory.db_url = "x"\n'),
     "hub", "a gradebook for users without GRADEBOOK_URL"),
    ("hub-literal-gradebook", HUB,
     lambda v: v["hub"]["extraConfig"].update({"dlcourse-instructors.py": v["hub"]["extraConfig"][
         "dlcourse-instructors.py"].replace('{"valueFrom": {"secretKeyRef": {**secret, "key": "url"}}}',
                                            '"postgresql://teacher:pw@db/gradebook"')}),
     "hub", "instructors' GRADEBOOK_URL is not from a Secret"),
    ("hub-gradebook-for-students", HUB,
     lambda v: v["hub"]["extraConfig"].update({"dlcourse-instructors.py": v["hub"]["extraConfig"][
         "dlcourse-instructors.py"].replace("        return\n", "        pass\n")}),
     "hub", "the hook gives students"),
    # the image
    ("student-image-copies-everything", "Dockerfile", None, "dockerfile", "copies the hidden tests"),
]


def _checker(kind: str, root: Path) -> list[str]:
    k = root / "kubernetes"
    return {"schema": lambda: schema_problems(k), "jobs": lambda: job_problems(k),
            "secrets": lambda: secret_problems(k), "resources": lambda: resource_problems(k),
            "security": lambda: security_problems(k),
            "hub": lambda: hub_problems(root / "jupyterhub" / "config.yaml"),
            "dockerfile": lambda: dockerfile_problems(root / "Dockerfile", k, root / "jupyterhub" / "config.yaml"),
            }[kind]()


@pytest.mark.parametrize("mutant, path, change, kind, expected", MUTANTS, ids=[m[0] for m in MUTANTS])
def test_a_broken_file_is_rejected(tmp_path, mutant, path, change, kind, expected):
    root = tmp_path / "deploy"
    shutil.copytree(DEPLOY, root)
    target = root / path
    assert _checker(kind, root) == [], "the unbroken copy must pass"
    if path == "Dockerfile":
        text = target.read_text().replace("COPY dlcourse/ dlcourse/", "COPY . .", 1)
        assert "COPY . ." in text
        target.write_text(text)
    else:
        docs = load(target)
        before = copy.deepcopy(docs)
        change(docs[0] if path == HUB else docs)
        assert docs != before, "the mutant changed nothing"
        with open(target, "w") as f:
            yaml.safe_dump_all(docs, f, sort_keys=False)
    problems = _checker(kind, root)
    assert any(expected in p for p in problems), f"{mutant}: expected {expected!r} in {problems}"


@pytest.mark.parametrize("broken, expected", [
    ("key: 1\nkey: 2\n", "key-duplicates"),
    ("key: value   \n", "trailing-spaces"),
    ("key:\n\t- value\n", "syntax"),
    ("on: yes\n", "truthy"),
], ids=["duplicate-key", "trailing-spaces", "tab", "yes-for-true"])
def test_yamllint_rejects(tmp_path, broken, expected):
    root = tmp_path / "deploy"
    shutil.copytree(DEPLOY, root)
    assert yamllint_problems(root) == []
    (root / "kubernetes" / "broken.yaml").write_text(broken)
    problems = yamllint_problems(root)
    assert any(expected in p for p in problems), problems


# ---------------------------------------------------------------------------------------------
# The instructors' guide names the commands the tests run


GUIDE = REPO / "book" / "guides" / "instructors.md"


def guide_commands(text: str) -> list[list[str]]:
    """argv of every `python -m autograder ...` line in the guide's bash blocks, with the
    guide's placeholders filled in as a reader would."""
    import shlex

    fill = {"K/N": "0/2", "SUBMISSIONS": "/tmp/submissions", "$GRADEBOOK_URL": "postgresql://g@db/gb",
            '"$GRADEBOOK_URL"': "postgresql://g@db/gb", "shard-K": "shard-0"}
    found = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        for line in block.splitlines():
            line = line.split("#", 1)[0].strip()
            if "-m autograder " not in line:
                continue
            for old, new in fill.items():
                line = line.replace(old, new)
            line = re.sub(r"\[[^\]]*\]", "", line)   # "[--jobs N]": an option the reader may add
            argv = [a for a in shlex.split(line) if a != "..."]
            found.append(argv[argv.index("autograder") + 1:])
    return found


def test_the_guide_names_the_sharded_commands_the_tests_run():
    """Every `python -m autograder` command of the instructors' guide parses with the real
    parser, and the guide has the three steps test_grade_postgres.py runs (register, grade
    --shard, export --feedback)."""
    import autograder.__main__ as cli

    seen = []
    stubs = {f: (lambda args, f=f: seen.append((f, args)) or 0) for f in ("_grade", "_register", "_export", "_release")}
    saved = {f: getattr(cli, f) for f in stubs}
    commands = guide_commands(GUIDE.read_text())
    try:
        for f, stub in stubs.items():
            setattr(cli, f, stub)
        for argv in commands:
            errors = io.StringIO()
            try:
                with contextlib.redirect_stderr(errors):
                    cli.main(argv)
            except SystemExit as exc:
                pytest.fail(f"the guide's `python -m autograder {' '.join(argv)}` does not parse "
                            f"(exit {exc.code}): {errors.getvalue().strip()[-300:]}")
    finally:
        for f, original in saved.items():
            setattr(cli, f, original)
    kinds = {(f, bool(getattr(a, "shard", None)), bool(getattr(a, "feedback", None))) for f, a in seen}
    assert {("_register", False, False), ("_grade", True, False), ("_export", False, True)} <= kinds, kinds
    tested = (REPO / "tests" / "test_grade_postgres.py").read_text()
    for step in ('"register"', '"--shard"', '"export"', '"--feedback"'):
        assert step in tested, f"test_grade_postgres.py no longer runs {step}"


def test_the_guide_check_rejects_a_wrong_command(tmp_path):
    broken = GUIDE.read_text().replace("--shard K/N", "--shards K/N")
    assert any("--shards" in argv for argv in guide_commands(broken))
    import autograder.__main__ as cli

    with pytest.raises(SystemExit), contextlib.redirect_stderr(io.StringIO()):
        cli.main(next(argv for argv in guide_commands(broken) if "--shards" in argv))
