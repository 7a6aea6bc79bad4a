"""The checks of check_deploy.py that span manifests: sharded serving and the distributed build.

  entry point  a tda container's command is one of the binaries the image copies, or sh.
  environment  every env var a tda container sets is one tda reads (a getenv("NAME") literal
               in src/, server/ or client/, or a name of the distributed world below), or one
               its own command line expands as $(NAME); every $(NAME) there is a var it sets.
  build Job    a Job whose tda container sets a distributed variable sets RANK, WORLD_SIZE,
               MASTER_ADDR and MASTER_PORT; RANK is the pod's completion index (downward
               API); the Job is Indexed with completions == parallelism == WORLD_SIZE;
               MASTER_ADDR is pod 0 (JOB-0) under the pod template's subdomain, a headless
               Service of deploy/k8s that selects the Job's pods and exposes MASTER_PORT on a
               port of theirs.
  router       `tda-server --router PATH`: PATH is a key of the ConfigMap mounted over it; the
               built tda-server reads that shard map without complaint; its local_index and
               security files lie under the router's mounts; it lists exactly the `replicas`
               pods of the StatefulSet its addresses name, in order, as
               <statefulset>-<i>.<serviceName>:<port of that Service serving tda-server's
               --listen port>, each shard's dir being the --index pod i serves ($(VAR)
               expanded, VAR from the pod-index label); TLS / token shards get a CA / token.
"""
import functools
import glob
import json
import os
import re
import subprocess
import tempfile

# The names the distributed build reads (torchrun's, and Gloo's interface): taken from
# src/distributed/world.cc's string literals when that file exists, else this list.
DISTRIBUTED_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT",
                   "GLOO_SOCKET_IFNAME")
RENDEZVOUS_ENV = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
COMPLETION_INDEX = "metadata.annotations['batch.kubernetes.io/job-completion-index']"
POD_INDEX = "metadata.labels['apps.kubernetes.io/pod-index']"
CLI_BINARIES = ("tda", "tda-server", "tda-job-worker")  # the binaries the image holds
SHELLS = ("sh",)  # scripts check_deploy.py reads


def tda_env_names(source_dir):
    """(every env var name tda reads, the distributed world's names)."""
    names = set()
    for pattern in ("src/**/*.cc", "server/**/*.cc", "client/**/*.cc"):
        for path in glob.glob(os.path.join(source_dir, pattern), recursive=True):
            with open(path, errors="replace") as f:
                names.update(re.findall(r'getenv\("([A-Za-z0-9_]+)"\)', f.read()))
    world = os.path.join(source_dir, "src", "distributed", "world.cc")
    if os.path.exists(world):
        with open(world) as f:
            distributed = set(re.findall(r'"([A-Z][A-Z0-9_]+)"', f.read()))
    else:
        distributed = set(DISTRIBUTED_ENV)
    return names | distributed, distributed


@functools.lru_cache(maxsize=None)
def shard_map_complaint(tda_server, text):
    """What the built tda-server says about the shard map `text` ('' when it reads it: it
    then fails only later, opening a local index that does not exist here)."""
    with tempfile.TemporaryDirectory() as scratch:
        path = os.path.join(scratch, "shardmap.json")
        with open(path, "w") as f:
            f.write(text)
        try:
            result = subprocess.run([tda_server, "--router", path, "--listen", "127.0.0.1:0"],
                                    capture_output=True, text=True, timeout=60)
        except subprocess.TimeoutExpired:
            return ""  # it read the map and serves: the local index exists on this machine
    complaint = [line for line in result.stderr.splitlines() if "shard map" in line]
    return complaint[0] if complaint else ""


def objects(deploy, kind):
    return {d["metadata"]["name"]: d for _, d in deploy.documents if d.get("kind") == kind}


def tda_containers(template):
    return [c for c in template.get("spec", {}).get("containers", [])
            if str(c.get("image", "")).startswith("tda:")]


def env_of(container):
    return {v["name"]: v for v in container.get("env", [])}


def expansions(container):
    """The $(NAME) references Kubernetes expands in a container's command and args."""
    words = [str(w) for w in (container.get("command") or []) + (container.get("args") or [])]
    return set(re.findall(r"(?<!\$)\$\(([A-Za-z_][A-Za-z0-9_]*)\)", " ".join(words)))


def flag_value(container, flag):
    words = [str(w) for w in (container.get("command") or []) + (container.get("args") or [])]
    for i, word in enumerate(words):
        if word == flag and i + 1 < len(words):
            return words[i + 1]
        if word.startswith(flag + "="):
            return word.split("=", 1)[1]
    return None


def under(path, mount):
    return path == mount or path.startswith(mount.rstrip("/") + "/")


def service_port_for(service, template, container_port):
    """The Service's port numbers that reach `container_port` of the pods of `template`."""
    named = {p.get("name"): p["containerPort"]
             for c in template["spec"].get("containers", []) for p in c.get("ports", [])}
    found = set()
    for port in service["spec"].get("ports", []):
        target = port.get("targetPort", port.get("port"))
        if named.get(target, target) == container_port:
            found.add(port.get("port"))
    return found


def selects(service, template):
    selector = service["spec"].get("selector", {})
    return bool(selector) and selector.items() <= template.get("metadata", {}).get(
        "labels", {}).items()


def check(checker, deploy):
    for file_name, document in deploy.documents:
        for template in checker.pod_templates(document):
            where = f"{file_name} {document['kind']}/{document['metadata']['name']}"
            for container in tda_containers(template):
                cwhere = f"{where} container {container.get('name')}"
                check_entry_point(checker, container, cwhere)
                check_environment(checker, deploy, container, cwhere)
        if document.get("kind") == "Job":
            check_build_job(checker, deploy, file_name, document)
        if document.get("kind") in ("Deployment", "StatefulSet"):
            for container in tda_containers(document["spec"]["template"]):
                if flag_value(container, "--router") is not None:
                    check_router(checker, deploy, file_name, document, container)


def check_entry_point(checker, container, where):
    command = [str(c) for c in container.get("command") or []]
    if command and os.path.basename(command[0]) not in CLI_BINARIES + SHELLS:
        checker.error(where, f"command {command[0]} is none of the image's binaries "
                      f"({', '.join(CLI_BINARIES)}) nor a shell")


def check_environment(checker, deploy, container, where):
    env = env_of(container)
    expanded = expansions(container)
    for name in env:
        if name not in deploy.env_names and name not in expanded:
            checker.error(where, f"env {name} is neither read by tda (no getenv(\"{name}\") in "
                          "its sources, not a distributed-build name) nor expanded as "
                          f"$({name}) in its command line")
    for name in sorted(expanded - set(env)):
        checker.error(where, f"$({name}) in the command line names no env var of the "
                      "container (Kubernetes would pass it on unexpanded)")


def check_build_job(checker, deploy, file_name, job):
    where = f"{file_name} Job/{job['metadata']['name']}"
    spec = job["spec"]
    template = spec.get("template", {})
    for container in tda_containers(template):
        env = env_of(container)
        if not set(env) & deploy.distributed_env_names:
            continue
        missing = [name for name in RENDEZVOUS_ENV if name not in env]
        if missing:
            checker.error(where, f"a distributed build must set {', '.join(missing)}")
            continue
        rank_from = env["RANK"].get("valueFrom", {}).get("fieldRef", {}).get("fieldPath")
        if rank_from != COMPLETION_INDEX:
            checker.error(where, f"RANK must come from {COMPLETION_INDEX} (downward API), not "
                          f"{rank_from or repr(env['RANK'].get('value'))}")
        world_size = str(env["WORLD_SIZE"].get("value"))
        if spec.get("completionMode") != "Indexed":
            checker.error(where, "completionMode must be Indexed (the completion index is RANK)")
        if not (str(spec.get("completions")) == str(spec.get("parallelism")) == world_size):
            checker.error(where, f"completions {spec.get('completions')} and parallelism "
                          f"{spec.get('parallelism')} must both be WORLD_SIZE {world_size}")
        if "LOCAL_RANK" in env and str(env["LOCAL_RANK"].get("value")) != "0":
            checker.error(where, "LOCAL_RANK must be 0: each pod runs one rank")
        subdomain = template.get("spec", {}).get("subdomain")
        master = f"{job['metadata']['name']}-0.{subdomain}"
        if not subdomain or str(env["MASTER_ADDR"].get("value")) != master:
            checker.error(where, f"MASTER_ADDR {env['MASTER_ADDR'].get('value')} must name pod "
                          f"0 through the pod template's subdomain: {master}")
            continue
        service = objects(deploy, "Service").get(subdomain)
        if service is None or service["spec"].get("clusterIP") != "None" or \
                not selects(service, template):
            checker.error(where, f"subdomain {subdomain} must be a headless Service of "
                          "deploy/k8s selecting the Job's pods")
            continue
        master_port = str(env["MASTER_PORT"].get("value"))
        if not master_port.isdigit() or int(master_port) not in service_port_for(
                service, template, int(master_port)):
            checker.error(where, f"Service {subdomain} does not expose MASTER_PORT "
                          f"{master_port} on a port of the Job's pods")


def check_router(checker, deploy, file_name, router, container):
    where = f"{file_name} {router['kind']}/{router['metadata']['name']}"
    path = flag_value(container, "--router")
    volumes = {v["name"]: v for v in router["spec"]["template"]["spec"].get("volumes", [])}
    mounts = [m["mountPath"] for m in container.get("volumeMounts", [])]
    text = None
    for mount in container.get("volumeMounts", []):
        config_map = volumes.get(mount["name"], {}).get("configMap")
        if config_map and under(path, mount["mountPath"]):
            key = os.path.relpath(path, mount["mountPath"])
            for item in config_map.get("items", []):
                if item.get("path") == key:
                    key = item["key"]
            text = objects(deploy, "ConfigMap").get(config_map.get("name"), {}).get(
                "data", {}).get(key)
    if text is None:
        checker.error(where, f"--router {path} is not a key of a ConfigMap of deploy/k8s "
                      "mounted over it")
        return
    complaint = shard_map_complaint(checker.binaries["tda-server"], text)
    if complaint:
        checker.error(where, f"tda-server refuses the shard map: {complaint}")
        return
    shard_map = json.loads(text)
    security = shard_map.get("security", {})
    base = os.path.dirname(path)
    for field, value in [("local_index", shard_map["local_index"])] + sorted(security.items()):
        resolved = os.path.normpath(os.path.join(base, value)) if value else ""
        if resolved and not any(under(resolved, m) for m in mounts):
            checker.error(where, f"shard map {field} {resolved} is not under a mount of the "
                          "router")
    shards = shard_map["shards"]
    host, _, port = shards[0]["address"].rpartition(":")
    pod, _, service_name = host.partition(".")
    name = pod.rsplit("-", 1)[0]
    stateful_set = objects(deploy, "StatefulSet").get(name)
    if stateful_set is None or stateful_set["spec"].get("serviceName") != service_name:
        checker.error(where, f"shard 0's address {shards[0]['address']} is not "
                      "<statefulset>-0.<its serviceName>:PORT of a StatefulSet of deploy/k8s")
        return
    check_shards(checker, deploy, where, stateful_set, shards, security)


def check_shards(checker, deploy, where, stateful_set, shards, security):
    name = stateful_set["metadata"]["name"]
    spec = stateful_set["spec"]
    template = spec["template"]
    server = tda_containers(template)[0]
    replicas = int(spec.get("replicas", 1))
    if len(shards) != replicas:
        checker.error(where, f"the shard map lists {len(shards)} shards, StatefulSet {name} "
                      f"runs {replicas}")
    listen = flag_value(server, "--listen") or "127.0.0.1:50051"
    ports = service_port_for(objects(deploy, "Service").get(spec["serviceName"], {"spec": {}}),
                             template, int(listen.rsplit(":", 1)[1]))
    served = flag_value(server, "--index") or ""
    env = env_of(server)
    for i, shard in enumerate(shards[:replicas]):
        expected = {f"{name}-{i}.{spec['serviceName']}:{port}" for port in ports}
        if shard["address"] not in expected:
            checker.error(where, f"shard {i}'s address {shard['address']} is not "
                          f"{name}-{i}.{spec['serviceName']}:<the Service's port of tda-server "
                          f"--listen {listen}>")
        dir_of_pod = re.sub(r"\$\((\w+)\)", lambda m: str(i) if env.get(m.group(1), {}).get(
            "valueFrom", {}).get("fieldRef", {}).get("fieldPath") == POD_INDEX else m.group(0),
            served)
        if shard.get("dir") != dir_of_pod:
            checker.error(where, f"shard {i}'s dir {shard.get('dir')} is not what pod {name}-{i} "
                          f"serves: --index {dir_of_pod}")
    if flag_value(server, "--tls-cert") and not security.get("tls_ca_file"):
        checker.error(where, f"StatefulSet {name} serves TLS: the shard map needs "
                      "security.tls_ca_file")
    if flag_value(server, "--auth-tokens") and not security.get("token_file"):
        checker.error(where, f"StatefulSet {name} requires tokens: the shard map needs "
                      "security.token_file")


def mutations(broken):
    """(what, broken copy) for each check above; `broken(what, edit)` edits a copy."""
    def first(d, kind, name):
        return objects(d, kind)[name]

    def container(d, kind, name):
        return first(d, kind, name)["spec"]["template"]["spec"]["containers"][0]

    def env(d, kind, name, variable):
        return env_of(container(d, kind, name))[variable]

    def edit_shard_map(d, edit):
        config_map = first(d, "ConfigMap", "tda-shardmap")["data"]
        shard_map = json.loads(config_map["shardmap.json"])
        edit(shard_map)
        config_map["shardmap.json"] = json.dumps(shard_map)

    def set_arg(d, kind, name, flag, value):
        args = container(d, kind, name)["args"]
        args[args.index(flag) + 1] = value

    def swap_addresses(shard_map):
        shards = shard_map["shards"]
        shards[0]["address"], shards[1]["address"] = shards[1]["address"], shards[0]["address"]

    def drop_mount(c, path):
        c["volumeMounts"] = [m for m in c["volumeMounts"] if m["mountPath"] != path]

    yield broken("a command that is not one of the image's binaries",
                 lambda d: container(d, "Job", "tda-build")["command"].__setitem__(0, "tda-build"),
                 "command tda-build is none of the image's binaries")
    yield broken("a misspelled distributed env var (WORLDSIZE)",
                 lambda d: env(d, "Job", "tda-build", "WORLD_SIZE").update(name="WORLDSIZE"),
                 "env WORLDSIZE is neither read by tda")
    yield broken("a $(VAR) in args that no env var defines",
                 lambda d: env(d, "StatefulSet", "tda-shard", "SHARD_INDEX").update(name="SHARD"),
                 "$(SHARD_INDEX) in the command line names no env var")
    yield broken("a build Job without MASTER_PORT",
                 lambda d: container(d, "Job", "tda-build")["env"].remove(
                     env(d, "Job", "tda-build", "MASTER_PORT")),
                 "a distributed build must set MASTER_PORT")
    yield broken("RANK from the pod's name, not its completion index",
                 lambda d: env(d, "Job", "tda-build", "RANK")["valueFrom"]["fieldRef"].update(
                     fieldPath="metadata.name"), "RANK must come from")
    yield broken("a Job that is not Indexed",
                 lambda d: first(d, "Job", "tda-build")["spec"].update(completionMode="NonIndexed"),
                 "completionMode must be Indexed")
    yield broken("parallelism below WORLD_SIZE",
                 lambda d: first(d, "Job", "tda-build")["spec"].update(parallelism=2),
                 "parallelism 2 must both be WORLD_SIZE 3")
    yield broken("MASTER_ADDR without the subdomain",
                 lambda d: env(d, "Job", "tda-build", "MASTER_ADDR").update(value="tda-build-0"),
                 "MASTER_ADDR tda-build-0 must name pod 0")
    yield broken("a subdomain that is not a headless Service",
                 lambda d: first(d, "Service", "tda-build")["spec"].pop("clusterIP"),
                 "must be a headless Service")
    yield broken("MASTER_PORT that the subdomain's Service does not expose",
                 lambda d: env(d, "Job", "tda-build", "MASTER_PORT").update(value="29501"),
                 "does not expose MASTER_PORT 29501")
    yield broken("a --router path outside the ConfigMap mount",
                 lambda d: set_arg(d, "Deployment", "tda-router", "--router", "/data/map.json"),
                 "is not a key of a ConfigMap")
    yield broken("a shard map tda-server refuses (rows do not tile)",
                 lambda d: edit_shard_map(d, lambda m: m["shards"][1].update(first_row=20001)),
                 "tda-server refuses the shard map")
    yield broken("more shard servers than shards in the map",
                 lambda d: first(d, "StatefulSet", "tda-shard")["spec"].update(replicas=4),
                 "the shard map lists 3 shards, StatefulSet tda-shard runs 4")
    yield broken("shard addresses out of order", lambda d: edit_shard_map(d, swap_addresses),
                 "shard 0's address tda-shard-1.tda-shard-pods:50051 is not")
    yield broken("shard servers all serving one dir",
                 lambda d: set_arg(d, "StatefulSet", "tda-shard", "--index",
                                   "/data/index-shards/shard-0"),
                 "is not what pod tda-shard-1 serves")
    yield broken("the data volume (local_index) not mounted in the router",
                 lambda d: drop_mount(container(d, "Deployment", "tda-router"), "/data"),
                 "local_index /data/index-shards/shard-0 is not under a mount")
    yield broken("no token for shards that require one",
                 lambda d: edit_shard_map(d, lambda m: m["security"].update(token_file="")),
                 "the shard map needs security.token_file")
    yield broken("a Service selecting no pod",
                 lambda d: first(d, "Service", "tda-router")["spec"]["selector"].update(
                     {"app.kubernetes.io/component": "routr"}),
                 "Service/tda-router: selects no pod")
