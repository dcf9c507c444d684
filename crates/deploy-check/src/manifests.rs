//! The parts of rendered Kubernetes manifests (`kubectl kustomize DIR`, one YAML document
//! per object) the checks look at: the workloads with their pod templates, the Services,
//! and the names and keys of the Secrets, ConfigMaps and volume claims.
//!
//! As in [`crate::compose`], a field the checks need but cannot read stays empty and the
//! check that needs it says so; only text that is no YAML, or an object without a kind or
//! a name, is an error here.

use std::collections::{BTreeMap, BTreeSet};

use yaml_rust2::{Yaml, YamlLoader};

use crate::compose::scalar;

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("not YAML: {0}")]
    NotYaml(#[from] yaml_rust2::ScanError),
    #[error("document {0} has no kind or no metadata.name")]
    Unnamed(usize),
}

/// Every object of one rendered kustomization.
#[derive(Debug, Default)]
pub struct Manifests {
    /// Deployments, StatefulSets and Jobs, in the order rendered.
    pub workloads: Vec<Workload>,
    pub services: Vec<Service>,
    /// Secret name → its keys (`data` and `stringData`).
    pub secrets: BTreeMap<String, BTreeSet<String>>,
    /// ConfigMap name → its keys.
    pub config_maps: BTreeMap<String, BTreeSet<String>>,
    /// PersistentVolumeClaim name → its access modes.
    pub claims: BTreeMap<String, Vec<String>>,
}

/// A Deployment, StatefulSet or Job: what its pods run.
#[derive(Debug, Default)]
pub struct Workload {
    pub kind: String,
    pub name: String,
    /// `spec.replicas` (Deployment, StatefulSet).
    pub replicas: Option<i64>,
    /// `spec.serviceName` (StatefulSet): the headless Service that names its pods.
    pub service_name: Option<String>,
    /// `spec.completionMode`, `spec.completions`, `spec.parallelism` (Job).
    pub completion_mode: Option<String>,
    pub completions: Option<i64>,
    pub parallelism: Option<i64>,
    /// The pod template's labels, which Services select.
    pub labels: BTreeMap<String, String>,
    pub containers: Vec<Container>,
    pub volumes: Vec<Volume>,
}

#[derive(Debug, Default)]
pub struct Container {
    pub name: String,
    pub image: Option<String>,
    /// `command:` replaces the image's ENTRYPOINT, `args:` its CMD.
    pub command: Option<Vec<String>>,
    pub args: Option<Vec<String>>,
    pub env: Vec<EnvVar>,
    pub ports: Vec<ContainerPort>,
    pub readiness: Option<Probe>,
    /// `resources.requests.cpu` and `resources.limits.cpu`, as written.
    pub cpu_request: Option<String>,
    pub cpu_limit: Option<String>,
    pub mounts: Vec<Mount>,
}

#[derive(Debug, PartialEq, Eq)]
pub struct EnvVar {
    pub name: String,
    /// `valueFrom.configMapKeyRef` as (ConfigMap, key).
    pub config_map_key: Option<(String, String)>,
}

#[derive(Debug, PartialEq, Eq)]
pub struct ContainerPort {
    pub name: Option<String>,
    pub port: u16,
}

/// A port as a probe or a Service's `targetPort` names it: a number, or a container port's name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PortRef {
    Number(u16),
    Name(String),
}

/// A readiness probe: `httpGet` (path and port), or another kind (`exec`, `tcpSocket`).
#[derive(Debug, PartialEq, Eq)]
pub enum Probe {
    Http { path: String, port: Option<PortRef> },
    Other,
}

#[derive(Debug, PartialEq, Eq)]
pub struct Mount {
    pub volume: String,
    pub path: String,
    pub read_only: bool,
}

#[derive(Debug, PartialEq, Eq)]
pub struct Volume {
    pub name: String,
    pub source: VolumeSource,
}

#[derive(Debug, PartialEq, Eq)]
pub enum VolumeSource {
    Secret(String),
    ConfigMap(String),
    Claim(String),
    Other,
}

#[derive(Debug, Default)]
pub struct Service {
    pub name: String,
    pub selector: BTreeMap<String, String>,
    pub ports: Vec<ServicePort>,
    pub session_affinity: Option<String>,
    /// `clusterIP: None`: its name resolves to the pods, and `<pod>.<name>` to each pod of
    /// the StatefulSet that names it.
    pub headless: bool,
}

#[derive(Debug, PartialEq, Eq)]
pub struct ServicePort {
    pub port: u16,
    /// `targetPort`, which defaults to `port`.
    pub target: PortRef,
}

impl Manifests {
    pub fn parse(text: &str) -> Result<Manifests, ManifestError> {
        let mut m = Manifests::default();
        for (i, doc) in YamlLoader::load_from_str(text)?.iter().enumerate() {
            if doc.is_null() || doc.is_badvalue() {
                continue;
            }
            let (Some(kind), Some(name)) = (scalar(&doc["kind"]), scalar(&doc["metadata"]["name"])) else {
                return Err(ManifestError::Unnamed(i + 1));
            };
            match kind.as_str() {
                "Deployment" | "StatefulSet" | "Job" => m.workloads.push(Workload::parse(kind, name, doc)),
                "Service" => m.services.push(Service::parse(name, &doc["spec"])),
                "Secret" => {
                    m.secrets.insert(name, keys(&doc["data"]).into_iter().chain(keys(&doc["stringData"])).collect());
                }
                "ConfigMap" => {
                    m.config_maps.insert(name, keys(&doc["data"]).into_iter().collect());
                }
                "PersistentVolumeClaim" => {
                    m.claims.insert(name, strings(&doc["spec"]["accessModes"]).unwrap_or_default());
                }
                _ => {}
            }
        }
        Ok(m)
    }

    /// The Services whose selector picks the pods of `w`.
    pub fn services_of<'a>(&'a self, w: &'a Workload) -> impl Iterator<Item = &'a Service> + 'a {
        self.services
            .iter()
            .filter(|s| !s.selector.is_empty() && s.selector.iter().all(|(k, v)| w.labels.get(k) == Some(v)))
    }

    /// The workloads whose pods `svc` selects.
    pub fn selected_by<'a>(&'a self, svc: &'a Service) -> impl Iterator<Item = &'a Workload> + 'a {
        self.workloads.iter().filter(|w| self.services_of(w).any(|s| s.name == svc.name))
    }

    pub fn service(&self, name: &str) -> Option<&Service> {
        self.services.iter().find(|s| s.name == name)
    }
}

impl Workload {
    fn parse(kind: String, name: String, doc: &Yaml) -> Workload {
        let spec = &doc["spec"];
        let pod = &spec["template"]["spec"];
        Workload {
            kind,
            name,
            replicas: spec["replicas"].as_i64(),
            service_name: scalar(&spec["serviceName"]),
            completion_mode: scalar(&spec["completionMode"]),
            completions: spec["completions"].as_i64(),
            parallelism: spec["parallelism"].as_i64(),
            labels: string_map(&spec["template"]["metadata"]["labels"]),
            containers: pod["containers"]
                .as_vec()
                .map(|cs| cs.iter().map(Container::parse).collect())
                .unwrap_or_default(),
            volumes: pod["volumes"]
                .as_vec()
                .map(|vs| vs.iter().filter_map(Volume::parse).collect())
                .unwrap_or_default(),
        }
    }

    pub fn volume(&self, name: &str) -> Option<&Volume> {
        self.volumes.iter().find(|v| v.name == name)
    }
}

impl Container {
    fn parse(c: &Yaml) -> Container {
        let probe = &c["readinessProbe"];
        let readiness = (!probe.is_badvalue()).then(|| match &probe["httpGet"] {
            Yaml::BadValue => Probe::Other,
            http => Probe::Http { path: scalar(&http["path"]).unwrap_or_default(), port: port_ref(&http["port"]) },
        });
        Container {
            name: scalar(&c["name"]).unwrap_or_default(),
            image: scalar(&c["image"]),
            command: strings(&c["command"]),
            args: strings(&c["args"]),
            env: c["env"]
                .as_vec()
                .map(|vars| {
                    vars.iter()
                        .filter_map(|v| {
                            let key = &v["valueFrom"]["configMapKeyRef"];
                            Some(EnvVar {
                                name: scalar(&v["name"])?,
                                config_map_key: scalar(&key["name"]).zip(scalar(&key["key"])),
                            })
                        })
                        .collect()
                })
                .unwrap_or_default(),
            ports: c["ports"]
                .as_vec()
                .map(|ports| {
                    ports
                        .iter()
                        .filter_map(|p| {
                            let port = p["containerPort"].as_i64().and_then(|n| u16::try_from(n).ok())?;
                            Some(ContainerPort { name: scalar(&p["name"]), port })
                        })
                        .collect()
                })
                .unwrap_or_default(),
            readiness,
            cpu_request: scalar(&c["resources"]["requests"]["cpu"]),
            cpu_limit: scalar(&c["resources"]["limits"]["cpu"]),
            mounts: c["volumeMounts"]
                .as_vec()
                .map(|ms| {
                    ms.iter()
                        .filter_map(|m| {
                            Some(Mount {
                                volume: scalar(&m["name"])?,
                                path: scalar(&m["mountPath"])?,
                                read_only: m["readOnly"].as_bool().unwrap_or(false),
                            })
                        })
                        .collect()
                })
                .unwrap_or_default(),
        }
    }

    /// The container port `port` names, if the container has it.
    pub fn resolve(&self, port: &PortRef) -> Option<u16> {
        match port {
            PortRef::Number(n) => self.ports.iter().any(|p| p.port == *n).then_some(*n),
            PortRef::Name(name) => self.ports.iter().find(|p| p.name.as_deref() == Some(name)).map(|p| p.port),
        }
    }

    /// What the container runs when the image's ENTRYPOINT is kept: its `args`.
    pub fn argv(&self) -> &[String] {
        self.args.as_deref().unwrap_or_default()
    }
}

impl Volume {
    fn parse(v: &Yaml) -> Option<Volume> {
        let source = if let Some(s) = scalar(&v["secret"]["secretName"]) {
            VolumeSource::Secret(s)
        } else if let Some(c) = scalar(&v["configMap"]["name"]) {
            VolumeSource::ConfigMap(c)
        } else if let Some(c) = scalar(&v["persistentVolumeClaim"]["claimName"]) {
            VolumeSource::Claim(c)
        } else {
            VolumeSource::Other
        };
        Some(Volume { name: scalar(&v["name"])?, source })
    }
}

impl Service {
    fn parse(name: String, spec: &Yaml) -> Service {
        let ports = spec["ports"]
            .as_vec()
            .map(|ports| {
                ports
                    .iter()
                    .filter_map(|p| {
                        let port = p["port"].as_i64().and_then(|n| u16::try_from(n).ok())?;
                        Some(ServicePort { port, target: port_ref(&p["targetPort"]).unwrap_or(PortRef::Number(port)) })
                    })
                    .collect()
            })
            .unwrap_or_default();
        Service {
            name,
            selector: string_map(&spec["selector"]),
            ports,
            session_affinity: scalar(&spec["sessionAffinity"]),
            headless: scalar(&spec["clusterIP"]).as_deref() == Some("None"),
        }
    }
}

/// A CPU quantity in millicores: `500m`, `0.5` and `"1"` as Kubernetes reads them.
pub fn millicores(quantity: &str) -> Option<u64> {
    let q = quantity.trim();
    let millis = match q.strip_suffix('m') {
        Some(m) => m.parse::<f64>().ok()?,
        None => q.parse::<f64>().ok()? * 1000.0,
    };
    (millis.is_finite() && millis >= 0.0 && millis.fract() == 0.0).then_some(millis as u64)
}

fn port_ref(y: &Yaml) -> Option<PortRef> {
    match y {
        Yaml::Integer(n) => u16::try_from(*n).ok().map(PortRef::Number),
        Yaml::String(s) => Some(s.parse().map_or_else(|_| PortRef::Name(s.clone()), PortRef::Number)),
        _ => None,
    }
}

fn strings(y: &Yaml) -> Option<Vec<String>> {
    y.as_vec().map(|items| items.iter().map(|i| scalar(i).unwrap_or_default()).collect())
}

fn keys(y: &Yaml) -> Vec<String> {
    y.as_hash().map(|h| h.keys().filter_map(scalar).collect()).unwrap_or_default()
}

fn string_map(y: &Yaml) -> BTreeMap<String, String> {
    y.as_hash().map(|h| h.iter().filter_map(|(k, v)| Some((scalar(k)?, scalar(v)?))).collect()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const RENDERED: &str = r#"apiVersion: v1
kind: Secret
metadata: {name: keys-abc}
data: {hs256.key: eA==}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: gen-xyz}
data: {RATE: "10"}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: logs}
spec: {accessModes: [ReadWriteMany]}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  sessionAffinity: ClientIP
  ports:
    - {port: 80, targetPort: http}
    - {port: 8000}
---
apiVersion: v1
kind: Service
metadata: {name: nodes}
spec: {clusterIP: None, selector: {app: nodes}, ports: [{port: 6379, targetPort: "6379"}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 3
  template:
    metadata: {labels: {app: web, tier: x}}
    spec:
      containers:
        - name: server
          image: authbench:local
          args: ["session-server", "--listen", "0.0.0.0:8000", "--demo-users", 10]
          env:
            - {name: A, value: "1"}
            - name: B
              valueFrom: {configMapKeyRef: {name: gen-xyz, key: RATE}}
          ports: [{name: http, containerPort: 8000}]
          readinessProbe: {httpGet: {path: /healthz, port: http}}
          resources: {requests: {cpu: 500m}, limits: {cpu: "0.5"}}
          volumeMounts: [{name: keys, mountPath: /keys, readOnly: true}]
      volumes:
        - {name: keys, secret: {secretName: keys-abc}}
        - {name: logs, persistentVolumeClaim: {claimName: logs}}
        - {name: tmp, emptyDir: {}}
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: nodes}
spec:
  serviceName: nodes
  replicas: 3
  template:
    metadata: {labels: {app: nodes}}
    spec:
      containers: [{name: redis, command: [redis-server], readinessProbe: {exec: {command: [redis-cli, ping]}}}]
---
apiVersion: batch/v1
kind: Job
metadata: {name: gen}
spec: {completionMode: Indexed, completions: 4, parallelism: 4, template: {spec: {containers: []}}}
"#;

    #[test]
    fn objects_of_a_rendering() {
        let m = Manifests::parse(RENDERED).unwrap();
        assert_eq!(m.secrets["keys-abc"], BTreeSet::from(["hs256.key".to_owned()]));
        assert_eq!(m.config_maps["gen-xyz"], BTreeSet::from(["RATE".to_owned()]));
        assert_eq!(m.claims["logs"], ["ReadWriteMany"]);
        assert_eq!(
            m.workloads.iter().map(|w| w.kind.as_str()).collect::<Vec<_>>(),
            ["Deployment", "StatefulSet", "Job"]
        );

        let web = &m.workloads[0];
        assert_eq!((web.name.as_str(), web.replicas), ("web", Some(3)));
        let c = &web.containers[0];
        assert_eq!(c.argv(), ["session-server", "--listen", "0.0.0.0:8000", "--demo-users", "10"]);
        assert_eq!((c.command.as_ref(), c.image.as_deref()), (None, Some("authbench:local")));
        assert_eq!(
            c.env,
            [
                EnvVar { name: "A".into(), config_map_key: None },
                EnvVar { name: "B".into(), config_map_key: Some(("gen-xyz".into(), "RATE".into())) }
            ]
        );
        assert_eq!(
            c.readiness,
            Some(Probe::Http { path: "/healthz".into(), port: Some(PortRef::Name("http".into())) })
        );
        assert_eq!((c.cpu_request.as_deref(), c.cpu_limit.as_deref()), (Some("500m"), Some("0.5")));
        assert_eq!(c.mounts, [Mount { volume: "keys".into(), path: "/keys".into(), read_only: true }]);
        assert_eq!(
            web.volumes.iter().map(|v| &v.source).collect::<Vec<_>>(),
            [&VolumeSource::Secret("keys-abc".into()), &VolumeSource::Claim("logs".into()), &VolumeSource::Other]
        );
        assert_eq!(c.resolve(&PortRef::Name("http".into())), Some(8000));
        assert_eq!(c.resolve(&PortRef::Number(8000)), Some(8000));
        assert_eq!(c.resolve(&PortRef::Number(8001)), None);
        assert_eq!(c.resolve(&PortRef::Name("https".into())), None);

        let svc = m.service("web").unwrap();
        assert_eq!(
            svc.ports,
            [
                ServicePort { port: 80, target: PortRef::Name("http".into()) },
                ServicePort { port: 8000, target: PortRef::Number(8000) }
            ]
        );
        assert_eq!((svc.session_affinity.as_deref(), svc.headless), (Some("ClientIP"), false));
        assert_eq!(m.services_of(web).map(|s| s.name.as_str()).collect::<Vec<_>>(), ["web"]);

        let nodes = &m.workloads[1];
        assert_eq!(nodes.service_name.as_deref(), Some("nodes"));
        assert_eq!(nodes.containers[0].readiness, Some(Probe::Other));
        assert_eq!(nodes.containers[0].argv(), [] as [String; 0], "no args: the command runs alone");
        let headless = m.service("nodes").unwrap();
        assert!(headless.headless);
        assert_eq!(headless.ports[0].target, PortRef::Number(6379), "a quoted number is a number");
        assert_eq!(m.selected_by(headless).map(|w| w.name.as_str()).collect::<Vec<_>>(), ["nodes"]);

        let job = &m.workloads[2];
        assert_eq!(
            (job.completion_mode.as_deref(), job.completions, job.parallelism),
            (Some("Indexed"), Some(4), Some(4))
        );
        assert_eq!(m.services_of(job).count(), 0);
    }

    #[test]
    fn malformed_renderings_are_errors() {
        assert!(Manifests::parse("kind: [").unwrap_err().to_string().starts_with("not YAML: "));
        assert_eq!(
            Manifests::parse("---\nkind: Service\n").unwrap_err().to_string(),
            "document 1 has no kind or no metadata.name"
        );
        let empty = Manifests::parse("").unwrap();
        assert!(empty.workloads.is_empty() && empty.services.is_empty());
    }

    #[test]
    fn cpu_quantities() {
        for (q, m) in
            [("500m", Some(500)), ("0.5", Some(500)), ("1", Some(1000)), ("2.25", Some(2250)), ("100m", Some(100))]
        {
            assert_eq!(millicores(q), m, "{q}");
        }
        for q in ["", "half", "0.0005", "-1", "1Gi"] {
            assert_eq!(millicores(q), None, "{q}");
        }
    }
}
