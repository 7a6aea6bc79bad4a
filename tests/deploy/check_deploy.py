#!/usr/bin/python3
"""Checks that deploy/ agrees with itself and with the built binaries (no cluster runs here).

  check_deploy.py --source-dir DIR --binary tda=PATH --binary tda-server=PATH
                  --binary tda-job-worker=PATH [--self-test]
every check, exit 1 on a mismatch; --self-test then also breaks copies of the files in known
ways, and each must be caught.

What is checked:
  Dockerfile   Debian 12 stages, a non-root final user, the binaries copied are the ones CMake
               installs, the entry point is one of them, and the final stage's packages provide
               every shared library the built binaries need (readelf + dpkg -S).
  manifests    every YAML document parses and names itself; volume mounts name volumes; claims
               name a PersistentVolumeClaim of deploy/k8s; Secrets are described in
               deploy/README.md; images are tda's; pods run as the image's user; every flag of
               every tda / tda-server command line (args, shell scripts, probes) is one its
               --help lists; path values lie under a mount of that container; listen ports,
               probe ports and Service targetPorts are container ports; probed gRPC services
               exist in proto/; a StatefulSet's serviceName is a headless Service; a --server
               HOST:PORT names a Service with that port (or localhost); a pod's prometheus.io
               annotations name tda-server's --metrics-listen port, /metrics and the scheme its
               TLS flags give.
  across       sharded serving and the distributed build (env names, the Indexed Job's
               rendezvous, the router's shard map against the shard StatefulSet): see
               check_distributed.py.
"""
import argparse
import copy
import functools
import glob
import os
import re
import shlex
import subprocess
import sys

import yaml

import check_distributed
from check_distributed import CLI_BINARIES

BASE_PACKAGES = {"libc6", "libgcc-s1", "libstdc++6"}  # in every Debian 12 image


class Deploy:
    """The files under check: Dockerfile text, manifests, README, CMake install targets."""

    def __init__(self, source_dir):
        deploy_dir = os.path.join(source_dir, "deploy")
        with open(os.path.join(deploy_dir, "Dockerfile")) as f:
            self.dockerfile = f.read()
        with open(os.path.join(deploy_dir, "README.md")) as f:
            self.readme = f.read()
        self.documents = []  # (file name, document)
        for path in sorted(glob.glob(os.path.join(deploy_dir, "k8s", "*.yaml"))):
            with open(path) as f:
                for document in yaml.safe_load_all(f):
                    if document is not None:
                        self.documents.append((os.path.basename(path), document))
        self.install_targets = set()
        for cmake in glob.glob(os.path.join(source_dir, "*", "CMakeLists.txt")):
            with open(cmake) as f:
                for match in re.finditer(r"install\(TARGETS ([^)]*?) (RUNTIME|LIBRARY)", f.read()):
                    self.install_targets.update(match.group(1).split())
        self.grpc_services = set()
        for proto in glob.glob(os.path.join(source_dir, "proto", "**", "*.proto"), recursive=True):
            with open(proto) as f:
                text = f.read()
            package = re.search(r"^package ([\w.]+);", text, re.M)
            for service in re.findall(r"^service (\w+)", text, re.M):
                self.grpc_services.add(f"{package.group(1)}.{service}" if package else service)
        self.env_names, self.distributed_env_names = check_distributed.tda_env_names(source_dir)


@functools.lru_cache(maxsize=None)
def listed_flags(binary, subcommand):
    result = subprocess.run([binary, *subcommand, "--help"], capture_output=True, text=True,
                            timeout=60)
    if result.returncode != 0:
        return None
    return set(re.findall(r"^\s+(--[a-z0-9-]+)", result.stdout + result.stderr, re.M))


@functools.lru_cache(maxsize=None)
def needed_libraries(binary):
    dynamic = subprocess.run(["readelf", "-d", binary], capture_output=True, text=True)
    if dynamic.returncode != 0:
        return None
    return tuple(re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", dynamic.stdout))


@functools.lru_cache(maxsize=None)
def library_packages(libraries):
    """library file name -> the installed Debian packages holding a file of that name."""
    owners = {}
    listing = subprocess.run(["dpkg", "-S", *(f"*/{library}" for library in libraries)],
                             capture_output=True, text=True).stdout
    for line in listing.splitlines():
        packages, _, path = line.partition(": ")
        for package in packages.split(", "):
            if not package.endswith(("-i386", "-dev", "-x32")):
                owners.setdefault(os.path.basename(path), set()).add(package.split(":")[0])
    return owners


class Checker:
    def __init__(self, binaries):
        self.binaries = binaries  # name -> path
        self.errors = []

    def error(self, where, message):
        self.errors.append(f"{where}: {message}")

    def flags_of(self, words):
        """The --flags that `words --help` lists (words[0] a tda binary); None if it fails."""
        return listed_flags(self.binaries[words[0]], tuple(words[1:]))

    # --- Dockerfile -------------------------------------------------------------------------
    def check_dockerfile(self, deploy):
        text = deploy.dockerfile.replace("\\\n", " ")
        stages = re.split(r"^FROM ", text, flags=re.M)[1:]
        where = "deploy/Dockerfile"
        if len(stages) < 2:
            self.error(where, "needs a build stage and a runtime stage")
            return None
        for stage in stages:
            if not stage.split()[0].startswith("debian:12"):
                self.error(where, f"stage base {stage.split()[0]} is not Debian 12")
        final = stages[-1]
        user = re.search(r"^USER (\S+)", final, re.M)
        uid = user.group(1).split(":")[0] if user else "root"
        if uid in ("root", "0"):
            self.error(where, "the final stage must run as a non-root USER")
        copied = set()  # target names: libNAME.so is the module NAME
        for line in re.findall(r"^COPY --from=\S+ (.*)$", final, re.M):
            copied.update(re.sub(r"^lib(.*)\.so$", r"\1", os.path.basename(p))
                          for p in line.split()[:-1])
        if copied != deploy.install_targets:
            self.error(where, f"copies {sorted(copied)} but CMake installs "
                       f"{sorted(deploy.install_targets)}")
        entry = re.search(r'^ENTRYPOINT \["([^"]+)"', final, re.M)
        if not entry or os.path.basename(entry.group(1)) not in CLI_BINARIES:
            self.error(where, "ENTRYPOINT must be one of the copied binaries")
        install = re.search(r"apt-get install (.*?)(&&|$)", final, re.M | re.S)
        packages = {w for w in install.group(1).split() if not w.startswith("-")} if install else set()
        self.check_runtime_packages(packages, where)
        return {"uid": uid, "entrypoint": os.path.basename(entry.group(1)) if entry else None}

    def check_runtime_packages(self, packages, where):
        needed = {}  # library -> the binaries that need it
        for binary in sorted(self.binaries):
            libraries = needed_libraries(self.binaries[binary])
            if libraries is None:
                self.error(where, f"cannot read {self.binaries[binary]} with readelf")
            for library in libraries or ():
                needed.setdefault(library, []).append(binary)
        owners = library_packages(tuple(sorted(needed)))
        for library, binaries in sorted(needed.items()):
            candidates = owners.get(library, set())
            if not candidates:
                self.error(where, f"{binaries[0]} needs {library}, which no installed Debian "
                           "package provides")
            elif not candidates & (packages | BASE_PACKAGES):
                self.error(where, f"{binaries[0]} needs {library} from {sorted(candidates)[0]}, "
                           "which the final stage does not install")

    # --- manifests --------------------------------------------------------------------------
    @staticmethod
    def pod_templates(document):
        kind = document.get("kind")
        spec = document.get("spec", {})
        if kind in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
            return [spec.get("template", {})]
        if kind == "CronJob":
            return [spec.get("jobTemplate", {}).get("spec", {}).get("template", {})]
        return []

    def command_lines(self, container, image):
        """(words, origin) for every tda command line in a container: args, scripts, probes."""
        lines = []
        command = container.get("command") or []
        args = [str(a) for a in container.get("args") or []]
        if command[:2] == ["/bin/sh", "-c"] or command[:2] == ["sh", "-c"]:
            for script in args + command[2:]:
                lines += [(w, "script") for w in self.tda_invocations(shlex.split(script))]
        elif command:
            lines.append(([str(c) for c in command] + args, "command"))
        else:
            lines.append(([image["entrypoint"]] + args, "args"))
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            exec_command = container.get(probe, {}).get("exec", {}).get("command")
            if exec_command:
                lines.append(([str(c) for c in exec_command], probe))
        return [(w, o) for w, o in lines if os.path.basename(w[0]) in CLI_BINARIES]

    @staticmethod
    def tda_invocations(tokens):
        starts = [i for i, t in enumerate(tokens) if os.path.basename(t) in CLI_BINARIES]
        for n, start in enumerate(starts):
            end = starts[n + 1] if n + 1 < len(starts) else len(tokens)
            yield tokens[start:end]

    def check_command_line(self, words, where, mounts, ports, deploy, services, metrics_ports):
        words = [os.path.basename(words[0])] + words[1:]
        first_flag = next((i for i, w in enumerate(words) if w.startswith("-")), len(words))
        subcommand = words[:first_flag]
        known = self.flags_of(subcommand)
        if known is None:
            self.error(where, f"`{' '.join(subcommand)} --help` fails: not a command")
            return
        for i in range(first_flag, len(words)):
            word = words[i]
            if not word.startswith("--"):
                continue
            flag = word.split("=")[0]
            if flag not in known:
                self.error(where, f"{' '.join(subcommand)} has no flag {flag}")
            value = word.split("=", 1)[1] if "=" in word else (
                words[i + 1] if i + 1 < len(words) else "")
            if value.startswith("/") and not any(
                    value == m or value.startswith(m.rstrip("/") + "/") for m in mounts):
                self.error(where, f"{flag} {value} is not under a volume mount of the container")
            if flag in ("--listen", "--http-listen", "--metrics-listen") and \
                    subcommand == ["tda-server"]:
                if value.rsplit(":", 1)[-1] not in {str(p) for p in ports.values()}:
                    self.error(where, f"{flag} {value}: port is not a container port")
            if flag == "--metrics-listen" and subcommand == ["tda-server"]:
                metrics_ports.add(value.rsplit(":", 1)[-1])
            if flag == "--server":
                host, _, port = value.rpartition(":")
                if host in ("localhost", "127.0.0.1"):
                    if port not in {str(p) for p in ports.values()}:
                        self.error(where, f"--server {value}: port is not a container port")
                elif int(port) not in services.get(host, set()):
                    self.error(where, f"--server {value}: no Service {host} with port {port}")
            if flag == "--service" and value not in deploy.grpc_services:
                self.error(where, f"--service {value} is not a gRPC service in proto/")

    def check_manifests(self, deploy, image):
        by_kind = {}
        for name, document in deploy.documents:
            for key in ("apiVersion", "kind"):
                if key not in document:
                    self.error(name, f"a document has no {key}")
            object_name = document.get("metadata", {}).get("name")
            if not object_name:
                self.error(name, "a document has no metadata.name")
            by_kind.setdefault(document.get("kind"), {})[object_name] = document
        services = {}
        for service_name, service in by_kind.get("Service", {}).items():
            services[service_name] = {p.get("port") for p in service["spec"].get("ports", [])}
        claims = set(by_kind.get("PersistentVolumeClaim", {}))
        template_ports = []  # (labels, {port name: number})
        for file_name, document in deploy.documents:
            where_object = f"{file_name} {document.get('kind')}/{document['metadata'].get('name')}"
            if document.get("kind") == "StatefulSet":
                governing = by_kind.get("Service", {}).get(document["spec"].get("serviceName"))
                if not governing or governing["spec"].get("clusterIP") != "None":
                    self.error(where_object, "serviceName must be a headless Service of deploy/k8s")
            claim_templates = {t["metadata"]["name"]
                               for t in document.get("spec", {}).get("volumeClaimTemplates", [])}
            for template in self.pod_templates(document):
                self.check_pod(template, where_object, image, deploy, services, claims,
                               claim_templates, template_ports)
        for service_name, service in by_kind.get("Service", {}).items():
            selector = service["spec"].get("selector", {})
            matched = [ports for labels, ports in template_ports
                       if selector.items() <= labels.items()]
            if not matched:
                self.error(f"Service/{service_name}", "selects no pod of deploy/k8s")
            for port in service["spec"].get("ports", []):
                target = port.get("targetPort", port.get("port"))
                if not any(target in ports or target in ports.values() for ports in matched):
                    self.error(f"Service/{service_name}", f"targetPort {target} is not a port of "
                               "the pods it selects")

    def check_pod(self, template, where, image, deploy, services, claims, claim_templates,
                  template_ports):
        spec = template.get("spec", {})
        security = spec.get("securityContext", {})
        if security.get("runAsNonRoot") is not True:
            self.error(where, "pod securityContext.runAsNonRoot must be true")
        if "runAsUser" in security and str(security["runAsUser"]) != image["uid"]:
            self.error(where, f"runAsUser {security['runAsUser']} is not the image's user "
                       f"{image['uid']}")
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        for volume in volumes.values():
            claim = volume.get("persistentVolumeClaim", {}).get("claimName")
            if claim is not None and claim not in claims:
                self.error(where, f"volume {volume['name']} claims {claim}, no PVC of deploy/k8s")
            secret = volume.get("secret", {}).get("secretName")
            if secret is not None and secret not in deploy.readme:
                self.error(where, f"Secret {secret} is not described in deploy/README.md")
        all_ports = {}
        metrics_ports = set()  # of tda-server --metrics-listen
        for container in spec.get("containers", []):
            cwhere = f"{where} container {container.get('name')}"
            if not str(container.get("image", "")).startswith("tda:"):
                self.error(cwhere, f"image {container.get('image')} is not tda's")
            mounts = []
            for mount in container.get("volumeMounts", []):
                if mount["name"] not in volumes and mount["name"] not in claim_templates:
                    self.error(cwhere, f"mounts {mount['name']}, which is not a volume")
                mounts.append(mount["mountPath"])
            ports = {p.get("name", str(p["containerPort"])): p["containerPort"]
                     for p in container.get("ports", [])}
            all_ports.update(ports)
            for variable in container.get("env", []):
                value = str(variable.get("value", ""))
                if value.startswith("/") and not any(value.startswith(m) for m in mounts):
                    self.error(cwhere, f"env {variable['name']}={value} is not under a mount")
            for probe_name in ("startupProbe", "readinessProbe", "livenessProbe"):
                probe = container.get(probe_name, {})
                for kind in ("tcpSocket", "httpGet", "grpc"):
                    if kind in probe and probe[kind]["port"] not in ports and \
                            probe[kind]["port"] not in ports.values():
                        self.error(cwhere, f"{probe_name} port {probe[kind]['port']} is not a "
                                   "container port")
            for words, origin in self.command_lines(container, image):
                self.check_command_line(words, f"{cwhere} {origin}", mounts, ports, deploy,
                                        services, metrics_ports)
        # Prometheus finds the metrics by the pod's annotations: they must name the port and
        # path tda-server serves them on, and the scheme its TLS flags give.
        annotations = template.get("metadata", {}).get("annotations", {})
        if annotations.get("prometheus.io/scrape") == "true" or metrics_ports:
            if str(annotations.get("prometheus.io/port")) not in metrics_ports:
                self.error(where, f"prometheus.io/port {annotations.get('prometheus.io/port')} is "
                           f"not the --metrics-listen port ({', '.join(metrics_ports) or 'none'})")
            if annotations.get("prometheus.io/path", "/metrics") != "/metrics":
                self.error(where, "prometheus.io/path must be /metrics")
            tls = any("--tls-cert" in [str(a) for a in c.get("args", [])]
                      for c in spec.get("containers", []))
            if annotations.get("prometheus.io/scheme", "http") != ("https" if tls else "http"):
                self.error(where, "prometheus.io/scheme must be https when tda-server has "
                           "--tls-cert (the metrics port serves TLS too), else http")
        template_ports.append((template.get("metadata", {}).get("labels", {}), all_ports))

    def run(self, deploy):
        image = self.check_dockerfile(deploy)
        if image is not None:
            self.check_manifests(deploy, image)
            check_distributed.check(self, deploy)
        return self.errors


def mutations(deploy):
    """Copies of `deploy`, each broken in one way the checks must catch: (what, broken copy,
    a part of the error expected)."""
    def server_pod_template(d):
        return check_distributed.objects(d, "StatefulSet")["tda-server"]["spec"]["template"]

    def server_pod(d):
        return server_pod_template(d)["spec"]

    def service(d):
        return check_distributed.objects(d, "Service")["tda-server"]

    def broken(what, edit, expect=""):
        """expect: a part of the error that must be among those reported (the check meant)."""
        copy_of = copy.deepcopy(deploy)
        edit(copy_of)
        return what, copy_of, expect

    yield broken("an unknown server flag",
                 lambda d: server_pod(d)["containers"][0]["args"].append("--no-such-flag"))
    yield broken("a Service targetPort no container has",
                 lambda d: service(d)["spec"]["ports"][0].update(targetPort="grpc-typo"))
    yield broken("a TLS file outside every mount", lambda d: server_pod(d)["containers"][0][
        "volumeMounts"].__setitem__(slice(None), [m for m in server_pod(d)["containers"][0][
            "volumeMounts"] if m["mountPath"] != "/tls"]))
    yield broken("a probed gRPC service that does not exist", lambda d: server_pod(d)[
        "containers"][0]["readinessProbe"]["exec"]["command"].__setitem__(
            -3, "tda.v1.NoSuchService"))
    yield broken("a root pod", lambda d: server_pod(d)["securityContext"].update(
        runAsNonRoot=False))
    yield broken("a runtime library left out of the image", lambda d: setattr(
        d, "dockerfile", d.dockerfile.replace("libtorch1.13", "")))
    yield broken("the SentencePiece module's library left out of the image", lambda d: setattr(
        d, "dockerfile", d.dockerfile.replace("libsentencepiece0", "")))
    yield broken("an installed module not copied into the image", lambda d: setattr(
        d, "dockerfile", re.sub(r"^COPY --from=build /opt/tda/lib/.*$", "", d.dockerfile,
                                flags=re.M)))
    yield broken("a prometheus.io/port that is not the --metrics-listen port",
                 lambda d: server_pod_template(d)["metadata"]["annotations"].update(
                     {"prometheus.io/port": "9091"}))
    yield broken("a --metrics-listen port that is not a container port", lambda d: server_pod(d)[
        "containers"][0]["ports"].__setitem__(slice(None), [p for p in server_pod(d)[
            "containers"][0]["ports"] if p["name"] != "metrics"]))
    yield broken("a claim of a PVC that is not defined", lambda d: server_pod(d)["volumes"][0][
        "persistentVolumeClaim"].update(claimName="tda-missing"))
    yield from check_distributed.mutations(broken)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source-dir", required=True)
    parser.add_argument("--binary", action="append", default=[], metavar="NAME=PATH",
                        help="where each installed target was built: tda, tda-server, "
                        "tda-job-worker and the modules")
    parser.add_argument("--self-test", action="store_true")
    options = parser.parse_args()
    binaries = dict(b.split("=", 1) for b in options.binary)
    deploy = Deploy(options.source_dir)
    if set(binaries) != deploy.install_targets:
        parser.error(f"give --binary for each installed target: "
                     f"{', '.join(sorted(deploy.install_targets))}")
    errors = Checker(binaries).run(deploy)
    for error in errors:
        print("deploy check:", error)
    print(f"deploy check: {len(deploy.documents)} manifests, {len(errors)} problems")
    if errors:
        return 1
    if options.self_test:
        missed = []
        for what, broken, expect in mutations(deploy):
            found = [e for e in Checker(binaries).run(broken) if expect in e]
            print(f"self-test: {what}: {'caught: ' + found[0] if found else 'MISSED'}")
            if not found:
                missed.append(what)
        if missed:
            print("self-test: not caught:", ", ".join(missed))
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
