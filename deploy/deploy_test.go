package deploy

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// Paths of the assets, relative to this package's directory (go test runs
// tests in the package directory).
const (
	repoRoot          = ".."
	composePath       = "../docker-compose.yml"
	dockerfilePath    = "../Dockerfile"
	prometheusPath    = "prometheus/prometheus.yml"
	datasourcesPath   = "grafana/provisioning/datasources/prometheus.yml"
	dashProvidersPath = "grafana/provisioning/dashboards/dashboards.yml"
	dashboardPath     = "grafana/dashboards/smartgroups.json"
)

// Compose service names the other assets refer to.
const (
	svcKafka       = "kafka"
	svcSmartgroups = "smartgroups"
	svcPrometheus  = "prometheus"
	svcGrafana     = "grafana"
)

// serveFlags are the flags of `smartgroups serve` (SPEC §5). Each takes a value.
var serveFlags = map[string]bool{
	"--brokers":         true,
	"--data-dir":        true,
	"--http":            true,
	"--group-id":        true,
	"--topic-prefix":    true,
	"--partitions":      true,
	"--clock":           true,
	"--embedded-broker": true,
}

// ---------------------------------------------------------------------------
// docker-compose.yml

// compose is a parsed compose file. Values keep yaml.v3's generic decoding
// (map[string]any, []any, string, int, bool) because most compose keys accept
// several syntaxes.
type compose struct {
	top      map[string]any
	services map[string]map[string]any
	volumes  map[string]bool // declared top-level named volumes
}

func parseCompose(data []byte) (*compose, error) {
	var top map[string]any
	if err := yaml.Unmarshal(data, &top); err != nil {
		return nil, err
	}
	if top == nil {
		return nil, fmt.Errorf("empty compose file")
	}
	c := &compose{top: top, services: map[string]map[string]any{}, volumes: map[string]bool{}}
	svcs, ok := top["services"].(map[string]any)
	if !ok || len(svcs) == 0 {
		return nil, fmt.Errorf("no services mapping")
	}
	for name, v := range svcs {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("service %q is not a mapping", name)
		}
		c.services[name] = m
	}
	if vols, ok := top["volumes"].(map[string]any); ok {
		for name := range vols {
			c.volumes[name] = true
		}
	} else if top["volumes"] != nil {
		return nil, fmt.Errorf("top-level volumes is not a mapping")
	}
	return c, nil
}

func loadCompose(t *testing.T) *compose {
	t.Helper()
	data, err := os.ReadFile(composePath)
	if err != nil {
		t.Fatal(err)
	}
	c, err := parseCompose(data)
	if err != nil {
		t.Fatalf("%s: %v", composePath, err)
	}
	return c
}

func (c *compose) service(t *testing.T, name string) map[string]any {
	t.Helper()
	s, ok := c.services[name]
	if !ok {
		t.Fatalf("compose has no %q service", name)
	}
	return s
}

var composeTopKeys = set("version", "name", "include", "services", "networks",
	"volumes", "configs", "secrets", "models")

// composeServiceKeys are the service attributes of the Compose specification;
// an unknown key is almost always a typo that compose would reject (or, in
// older versions, silently ignore).
var composeServiceKeys = set("annotations", "attach", "blkio_config", "build",
	"cap_add", "cap_drop", "cgroup", "cgroup_parent", "command", "configs",
	"container_name", "cpu_count", "cpu_percent", "cpu_period", "cpu_quota",
	"cpu_rt_period", "cpu_rt_runtime", "cpu_shares", "cpus", "cpuset",
	"credential_spec", "depends_on", "deploy", "develop", "device_cgroup_rules",
	"devices", "dns", "dns_opt", "dns_search", "domainname", "entrypoint",
	"env_file", "environment", "expose", "extends", "external_links",
	"extra_hosts", "gpus", "group_add", "healthcheck", "hostname", "image", "init",
	"ipc", "isolation", "labels", "label_file", "links", "logging", "mac_address",
	"mem_limit", "mem_reservation", "mem_swappiness", "memswap_limit", "models",
	"network_mode", "networks", "oom_kill_disable", "oom_score_adj", "pid",
	"pids_limit", "platform", "ports", "post_start", "pre_stop", "privileged",
	"profiles", "provider", "pull_policy", "read_only", "restart", "runtime",
	"scale", "secrets", "security_opt", "shm_size", "stdin_open",
	"stop_grace_period", "stop_signal", "storage_opt", "sysctls", "tmpfs", "tty",
	"ulimits", "use_api_socket", "user", "userns_mode", "uts", "volumes",
	"volumes_from", "working_dir")

// checkComposeKeys reports unknown top-level and service keys (x- extensions
// are allowed) and services with neither image nor build.
func checkComposeKeys(c *compose) []string {
	var problems []string
	for _, k := range sortedKeys(c.top) {
		if !composeTopKeys[k] && !strings.HasPrefix(k, "x-") {
			problems = append(problems, fmt.Sprintf("unknown top-level key %q", k))
		}
	}
	for _, name := range sortedKeys(c.services) {
		s := c.services[name]
		for _, k := range sortedKeys(s) {
			if !composeServiceKeys[k] && !strings.HasPrefix(k, "x-") {
				problems = append(problems, fmt.Sprintf("service %q: unknown key %q", name, k))
			}
		}
		if s["image"] == nil && s["build"] == nil {
			problems = append(problems, fmt.Sprintf("service %q: neither image nor build", name))
		}
	}
	return problems
}

// dependsOn returns a service's dependencies and their conditions
// ("service_started" for the list syntax).
func dependsOn(s map[string]any) (map[string]string, error) {
	deps := map[string]string{}
	switch v := s["depends_on"].(type) {
	case nil:
	case []any:
		for _, d := range v {
			name, ok := d.(string)
			if !ok {
				return nil, fmt.Errorf("depends_on entry %v is not a string", d)
			}
			deps[name] = "service_started"
		}
	case map[string]any:
		for name, spec := range v {
			cond := "service_started"
			if m, ok := spec.(map[string]any); ok {
				if c, ok := m["condition"].(string); ok {
					cond = c
				}
			} else if spec != nil {
				return nil, fmt.Errorf("depends_on %q: not a mapping", name)
			}
			deps[name] = cond
		}
	default:
		return nil, fmt.Errorf("depends_on is neither a list nor a mapping")
	}
	return deps, nil
}

func hasHealthcheck(s map[string]any) bool {
	hc, ok := s["healthcheck"].(map[string]any)
	if !ok {
		return false
	}
	if d, _ := hc["disable"].(bool); d {
		return false
	}
	switch test := hc["test"].(type) {
	case string:
		return test != "" && test != "NONE"
	case []any:
		return len(test) > 1 || (len(test) == 1 && test[0] != "NONE")
	}
	return false
}

// checkDependsOn reports dependencies on missing services, unknown
// conditions, service_healthy on a service without healthcheck, and cycles.
func checkDependsOn(c *compose) []string {
	var problems []string
	graph := map[string][]string{}
	for _, name := range sortedKeys(c.services) {
		deps, err := dependsOn(c.services[name])
		if err != nil {
			problems = append(problems, fmt.Sprintf("service %q: %v", name, err))
			continue
		}
		for _, dep := range sortedKeys(deps) {
			cond := deps[dep]
			target, ok := c.services[dep]
			switch {
			case !ok:
				problems = append(problems, fmt.Sprintf("service %q depends on %q, which does not exist", name, dep))
				continue
			case dep == name:
				problems = append(problems, fmt.Sprintf("service %q depends on itself", name))
			}
			switch cond {
			case "service_started", "service_completed_successfully":
			case "service_healthy":
				if !hasHealthcheck(target) {
					problems = append(problems, fmt.Sprintf("service %q waits for %q to be healthy, but %q has no healthcheck", name, dep, dep))
				}
			default:
				problems = append(problems, fmt.Sprintf("service %q: unknown depends_on condition %q", name, cond))
			}
			graph[name] = append(graph[name], dep)
		}
	}
	// Cycle detection (compose refuses to start a cyclic graph).
	const (
		unvisited = iota
		visiting
		done
	)
	state := map[string]int{}
	var visit func(string) bool
	visit = func(n string) bool {
		switch state[n] {
		case visiting:
			return true
		case done:
			return false
		}
		state[n] = visiting
		for _, d := range graph[n] {
			if visit(d) {
				return true
			}
		}
		state[n] = done
		return false
	}
	for _, n := range sortedKeys(c.services) {
		if state[n] == unvisited && visit(n) {
			problems = append(problems, fmt.Sprintf("depends_on cycle through %q", n))
			break
		}
	}
	return problems
}

// mount is one entry of a service's volumes.
type mount struct {
	kind   string // "bind", "volume" or "tmpfs"
	source string // host path as written (bind) or volume name (volume)
	target string
}

func parseMounts(s map[string]any) ([]mount, error) {
	raw, _ := s["volumes"].([]any)
	if s["volumes"] != nil && raw == nil {
		return nil, fmt.Errorf("volumes is not a list")
	}
	var out []mount
	for _, v := range raw {
		switch m := v.(type) {
		case string:
			parts := strings.Split(m, ":")
			if len(parts) == 1 { // anonymous volume
				out = append(out, mount{kind: "volume", target: parts[0]})
				continue
			}
			if len(parts) > 3 {
				return nil, fmt.Errorf("volume %q: too many fields", m)
			}
			src := parts[0]
			kind := "volume"
			if strings.HasPrefix(src, ".") || strings.HasPrefix(src, "/") || strings.HasPrefix(src, "~") {
				kind = "bind"
			}
			out = append(out, mount{kind: kind, source: src, target: parts[1]})
		case map[string]any:
			kind, _ := m["type"].(string)
			src, _ := m["source"].(string)
			tgt, _ := m["target"].(string)
			if kind == "" || tgt == "" {
				return nil, fmt.Errorf("volume %v: needs type and target", m)
			}
			out = append(out, mount{kind: kind, source: src, target: tgt})
		default:
			return nil, fmt.Errorf("volume entry %v: neither string nor mapping", v)
		}
	}
	return out, nil
}

// hostPath resolves a bind mount source against the repository root and
// reports whether it stays inside the repository.
func hostPath(root, src string) (string, bool) {
	if filepath.IsAbs(src) || strings.HasPrefix(src, "~") {
		return src, false
	}
	p := filepath.Join(root, filepath.FromSlash(src))
	rel, err := filepath.Rel(root, p)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return p, false
	}
	return p, true
}

// checkMounts reports bind mounts whose host path is outside the repository
// or missing, named volumes that are not declared, and duplicate targets.
// It also checks build contexts and Dockerfiles exist.
func checkMounts(c *compose, root string) []string {
	var problems []string
	for _, name := range sortedKeys(c.services) {
		s := c.services[name]
		mounts, err := parseMounts(s)
		if err != nil {
			problems = append(problems, fmt.Sprintf("service %q: %v", name, err))
			continue
		}
		targets := map[string]bool{}
		for _, m := range mounts {
			if targets[m.target] {
				problems = append(problems, fmt.Sprintf("service %q: %s mounted twice", name, m.target))
			}
			targets[m.target] = true
			if !path.IsAbs(m.target) {
				problems = append(problems, fmt.Sprintf("service %q: mount target %q is not absolute", name, m.target))
			}
			switch m.kind {
			case "bind":
				p, inRepo := hostPath(root, m.source)
				if !inRepo {
					problems = append(problems, fmt.Sprintf("service %q: bind mount %q is outside the repository", name, m.source))
					continue
				}
				if _, err := os.Stat(p); err != nil {
					problems = append(problems, fmt.Sprintf("service %q: bind-mounted host path %q does not exist in the repository", name, m.source))
				}
			case "volume":
				if m.source != "" && !c.volumes[m.source] {
					problems = append(problems, fmt.Sprintf("service %q: named volume %q is not declared under top-level volumes", name, m.source))
				}
			case "tmpfs":
			default:
				problems = append(problems, fmt.Sprintf("service %q: unknown mount type %q", name, m.kind))
			}
		}
		ctx, dockerfile := "", ""
		switch b := s["build"].(type) {
		case nil:
			continue
		case string:
			ctx = b
		case map[string]any:
			ctx, _ = b["context"].(string)
			dockerfile, _ = b["dockerfile"].(string)
		}
		if ctx == "" {
			ctx = "."
		}
		if dockerfile == "" {
			dockerfile = "Dockerfile"
		}
		p, inRepo := hostPath(root, ctx)
		if !inRepo {
			problems = append(problems, fmt.Sprintf("service %q: build context %q is outside the repository", name, ctx))
			continue
		}
		if _, err := os.Stat(filepath.Join(p, filepath.FromSlash(dockerfile))); err != nil {
			problems = append(problems, fmt.Sprintf("service %q: %v", name, err))
		}
	}
	return problems
}

// args returns a command or entrypoint as a list of arguments.
func args(v any) ([]string, error) {
	switch a := v.(type) {
	case nil:
		return nil, nil
	case string:
		return strings.Fields(a), nil
	case []any:
		out := make([]string, len(a))
		for i, x := range a {
			switch x := x.(type) {
			case string:
				out[i] = x
			case int, float64, bool:
				out[i] = fmt.Sprint(x)
			default:
				return nil, fmt.Errorf("argument %v is not a scalar", x)
			}
		}
		return out, nil
	}
	return nil, fmt.Errorf("not a string or list")
}

// parseServe checks a `serve ...` argument list: the subcommand comes first,
// then only known flags, each with a value. It returns the flag values.
func parseServe(argv []string) (map[string]string, []string) {
	var problems []string
	flags := map[string]string{}
	if len(argv) == 0 || argv[0] != "serve" {
		return nil, []string{fmt.Sprintf("command %q does not start with the serve subcommand", argv)}
	}
	for i := 1; i < len(argv); i++ {
		a := argv[i]
		if !strings.HasPrefix(a, "--") {
			problems = append(problems, fmt.Sprintf("unexpected argument %q", a))
			continue
		}
		name, val, hasVal := strings.Cut(a, "=")
		if !serveFlags[name] {
			problems = append(problems, fmt.Sprintf("unknown serve flag %q", name))
		}
		if !hasVal {
			if i+1 >= len(argv) || strings.HasPrefix(argv[i+1], "--") {
				problems = append(problems, fmt.Sprintf("flag %s has no value", name))
				continue
			}
			i++
			val = argv[i]
		}
		if _, dup := flags[name]; dup {
			problems = append(problems, fmt.Sprintf("flag %s given twice", name))
		}
		flags[name] = val
	}
	return flags, problems
}

// smartgroupsServe returns the flags of the smartgroups service's command.
func smartgroupsServe(t *testing.T, c *compose) map[string]string {
	t.Helper()
	argv, err := args(c.service(t, svcSmartgroups)["command"])
	if err != nil {
		t.Fatalf("smartgroups command: %v", err)
	}
	flags, problems := parseServe(argv)
	for _, p := range problems {
		t.Errorf("smartgroups command: %s", p)
	}
	return flags
}

// port is one published port.
type port struct {
	hostIP   string
	host     int // 0: ephemeral
	target   int
	protocol string
}

func parsePortRange(s string) ([]int, error) {
	lo, hi, isRange := strings.Cut(s, "-")
	a, err := strconv.Atoi(lo)
	if err != nil {
		return nil, err
	}
	b := a
	if isRange {
		if b, err = strconv.Atoi(hi); err != nil {
			return nil, err
		}
	}
	if a < 1 || b > 65535 || b < a {
		return nil, fmt.Errorf("bad port range %q", s)
	}
	var out []int
	for p := a; p <= b; p++ {
		out = append(out, p)
	}
	return out, nil
}

func parsePorts(s map[string]any) ([]port, error) {
	raw, _ := s["ports"].([]any)
	if s["ports"] != nil && raw == nil {
		return nil, fmt.Errorf("ports is not a list")
	}
	var out []port
	for _, v := range raw {
		switch p := v.(type) {
		case int:
			out = append(out, port{target: p, protocol: "tcp"})
		case string:
			spec, proto, _ := strings.Cut(p, "/")
			if proto == "" {
				proto = "tcp"
			}
			ip := ""
			if strings.HasPrefix(spec, "[") { // [::1]:8080:8080
				end := strings.Index(spec, "]")
				if end < 0 {
					return nil, fmt.Errorf("port %q: bad IPv6 address", p)
				}
				ip, spec = spec[1:end], strings.TrimPrefix(spec[end+1:], ":")
			}
			parts := strings.Split(spec, ":")
			var hostPart, targetPart string
			switch len(parts) {
			case 1:
				targetPart = parts[0]
			case 2:
				hostPart, targetPart = parts[0], parts[1]
			case 3:
				ip, hostPart, targetPart = parts[0], parts[1], parts[2]
			default:
				return nil, fmt.Errorf("port %q: too many fields", p)
			}
			if ip != "" && net.ParseIP(ip) == nil {
				return nil, fmt.Errorf("port %q: bad host IP", p)
			}
			targets, err := parsePortRange(targetPart)
			if err != nil {
				return nil, fmt.Errorf("port %q: %w", p, err)
			}
			if hostPart == "" {
				for _, tp := range targets {
					out = append(out, port{hostIP: ip, target: tp, protocol: proto})
				}
				continue
			}
			hosts, err := parsePortRange(hostPart)
			if err != nil {
				return nil, fmt.Errorf("port %q: %w", p, err)
			}
			if len(hosts) != len(targets) {
				return nil, fmt.Errorf("port %q: host and container ranges differ in size", p)
			}
			for i := range hosts {
				out = append(out, port{hostIP: ip, host: hosts[i], target: targets[i], protocol: proto})
			}
		case map[string]any:
			tp, ok := p["target"].(int)
			if !ok {
				return nil, fmt.Errorf("port %v: no integer target", p)
			}
			pr := port{target: tp, protocol: "tcp"}
			if proto, ok := p["protocol"].(string); ok {
				pr.protocol = proto
			}
			if ip, ok := p["host_ip"].(string); ok {
				pr.hostIP = ip
			}
			switch pub := p["published"].(type) {
			case int:
				pr.host = pub
			case string:
				n, err := strconv.Atoi(pub)
				if err != nil {
					return nil, fmt.Errorf("port %v: published %q is not a single port", p, pub)
				}
				pr.host = n
			}
			out = append(out, pr)
		default:
			return nil, fmt.Errorf("port entry %v: unsupported syntax", v)
		}
	}
	return out, nil
}

func unspecifiedIP(ip string) bool {
	return ip == "" || ip == "0.0.0.0" || ip == "::"
}

// checkPorts reports host ports published twice (on the same address, or on
// a wildcard address and a specific one).
func checkPorts(c *compose) []string {
	var problems []string
	type owner struct {
		svc string
		p   port
	}
	var seen []owner
	for _, name := range sortedKeys(c.services) {
		ports, err := parsePorts(c.services[name])
		if err != nil {
			problems = append(problems, fmt.Sprintf("service %q: %v", name, err))
			continue
		}
		for _, p := range ports {
			if p.host == 0 {
				continue
			}
			for _, o := range seen {
				if o.p.host != p.host || o.p.protocol != p.protocol {
					continue
				}
				if o.p.hostIP == p.hostIP || unspecifiedIP(o.p.hostIP) || unspecifiedIP(p.hostIP) {
					problems = append(problems, fmt.Sprintf("host port %d/%s published by both %q and %q", p.host, p.protocol, o.svc, name))
				}
			}
			seen = append(seen, owner{name, p})
		}
	}
	return problems
}

func splitHostPort(t *testing.T, what, hp string) (string, int) {
	t.Helper()
	h, p, err := net.SplitHostPort(hp)
	if err != nil {
		t.Fatalf("%s %q: %v", what, hp, err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatalf("%s %q: port: %v", what, hp, err)
	}
	return h, n
}

// environment returns a service's environment as a map, from either syntax.
func environment(s map[string]any) map[string]string {
	env := map[string]string{}
	switch e := s["environment"].(type) {
	case map[string]any:
		for k, v := range e {
			env[k] = fmt.Sprint(v)
		}
	case []any:
		for _, kv := range e {
			k, v, _ := strings.Cut(fmt.Sprint(kv), "=")
			env[k] = v
		}
	}
	return env
}

func TestComposeParses(t *testing.T) {
	c := loadCompose(t)
	for _, name := range []string{svcKafka, svcSmartgroups, svcPrometheus, svcGrafana} {
		c.service(t, name)
	}
	for _, p := range checkComposeKeys(c) {
		t.Error(p)
	}
	if img, _ := c.services[svcKafka]["image"].(string); img != "apache/kafka:4.1.0" {
		t.Errorf("kafka image = %q, want apache/kafka:4.1.0", img)
	}
}

func TestComposeDependsOn(t *testing.T) {
	c := loadCompose(t)
	for _, p := range checkDependsOn(c) {
		t.Error(p)
	}
	// smartgroups must wait for a broker that answers, not just a started
	// container.
	deps, err := dependsOn(c.service(t, svcSmartgroups))
	if err != nil {
		t.Fatal(err)
	}
	if deps[svcKafka] != "service_healthy" {
		t.Errorf("smartgroups depends_on kafka condition = %q, want service_healthy", deps[svcKafka])
	}
}

func TestComposeMounts(t *testing.T) {
	c := loadCompose(t)
	for _, p := range checkMounts(c, repoRoot) {
		t.Error(p)
	}
}

func TestComposePorts(t *testing.T) {
	c := loadCompose(t)
	for _, p := range checkPorts(c) {
		t.Error(p)
	}
}

func TestSmartgroupsService(t *testing.T) {
	c := loadCompose(t)
	svc := c.service(t, svcSmartgroups)
	flags := smartgroupsServe(t, c)

	// --brokers names the kafka service on a listener it advertises.
	brokers := flags["--brokers"]
	if brokers == "" {
		t.Fatal("smartgroups command has no --brokers (it would start an embedded broker)")
	}
	advertised := environment(c.service(t, svcKafka))["KAFKA_ADVERTISED_LISTENERS"]
	for _, b := range strings.Split(brokers, ",") {
		host, _ := splitHostPort(t, "--brokers", b)
		if _, ok := c.services[host]; !ok {
			t.Errorf("--brokers host %q is not a compose service", host)
		}
		if !strings.Contains(advertised, "://"+b) {
			t.Errorf("--brokers %q is not among kafka's advertised listeners %q", b, advertised)
		}
	}

	// --http listens on all interfaces (Prometheus scrapes it from another
	// container) on a port the service publishes.
	httpHost, httpPort := splitHostPort(t, "--http", flags["--http"])
	if !unspecifiedIP(httpHost) {
		t.Errorf("--http host %q: Prometheus could not reach it from its container", httpHost)
	}
	ports, err := parsePorts(svc)
	if err != nil {
		t.Fatal(err)
	}
	published := false
	for _, p := range ports {
		published = published || p.target == httpPort
	}
	if !published {
		t.Errorf("smartgroups does not publish its HTTP port %d", httpPort)
	}

	// --data-dir is a mounted volume, so state survives a restart.
	mounts, err := parseMounts(svc)
	if err != nil {
		t.Fatal(err)
	}
	dataMounted := false
	for _, m := range mounts {
		dataMounted = dataMounted || m.target == flags["--data-dir"]
	}
	if !dataMounted {
		t.Errorf("--data-dir %q is not a mounted volume", flags["--data-dir"])
	}
}

func TestKafkaSingleNode(t *testing.T) {
	c := loadCompose(t)
	env := environment(c.service(t, svcKafka))
	want := map[string]string{
		"KAFKA_PROCESS_ROLES":                            "broker,controller",
		"KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR":         "1",
		"KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR": "1",
		"KAFKA_TRANSACTION_STATE_LOG_MIN_ISR":            "1",
	}
	for k, v := range want {
		if env[k] != v {
			t.Errorf("kafka %s = %q, want %q", k, env[k], v)
		}
	}
	if !strings.Contains(env["KAFKA_ADVERTISED_LISTENERS"], "://kafka:9092") {
		t.Errorf("kafka does not advertise kafka:9092 to containers: %q", env["KAFKA_ADVERTISED_LISTENERS"])
	}
	// Every listener named in listeners has a security protocol.
	protocols := map[string]bool{}
	for _, kv := range strings.Split(env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"], ",") {
		name, _, _ := strings.Cut(kv, ":")
		protocols[name] = true
	}
	for _, l := range strings.Split(env["KAFKA_LISTENERS"], ",") {
		name, _, _ := strings.Cut(l, "://")
		if !protocols[name] {
			t.Errorf("listener %q has no entry in KAFKA_LISTENER_SECURITY_PROTOCOL_MAP", name)
		}
	}
}

// ---------------------------------------------------------------------------
// Dockerfile

// dockerfile is what the tests read from the Dockerfile.
type dockerfile struct {
	text   string
	froms  []string // FROM arguments, in order
	users  []string // USER arguments, in order
	cmd    []string // the exec-form CMD
	cmdErr error    // why CMD is not an exec-form JSON array
	built  bool     // a RUN builds /smartgroups from ./cmd/smartgroups
}

func loadDockerfile(t *testing.T) *dockerfile {
	t.Helper()
	data, err := os.ReadFile(dockerfilePath)
	if err != nil {
		t.Fatal(err)
	}
	df := &dockerfile{text: string(data)}
	var cmd string
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		instr, rest, _ := strings.Cut(line, " ")
		switch strings.ToUpper(instr) {
		case "FROM":
			df.froms = append(df.froms, rest)
		case "USER":
			df.users = append(df.users, strings.TrimSpace(rest))
		case "CMD":
			cmd = rest
		case "RUN":
			if strings.Contains(rest, "go build") && strings.Contains(rest, "-o /smartgroups") && strings.Contains(rest, "./cmd/smartgroups") {
				df.built = true
			}
		}
	}
	if err := json.Unmarshal([]byte(cmd), &df.cmd); err != nil {
		df.cmdErr = fmt.Errorf("CMD %q is not an exec-form JSON array: %w", cmd, err)
	}
	return df
}

func TestDockerfile(t *testing.T) {
	df := loadDockerfile(t)
	if len(df.froms) < 2 {
		t.Errorf("Dockerfile has %d stages, want a multi-stage build", len(df.froms))
	} else if !strings.HasPrefix(df.froms[0], "golang:1.26") {
		t.Errorf("builder stage is %q, want golang:1.26", df.froms[0])
	}
	if !df.built {
		t.Error("Dockerfile does not run go build -o /smartgroups ./cmd/smartgroups")
	}
	if len(df.users) == 0 {
		t.Error("runtime stage has no USER: it would run as root")
	} else if u := df.users[len(df.users)-1]; u == "root" || u == "0" || strings.HasPrefix(u, "0:") || strings.HasPrefix(u, "root:") {
		t.Errorf("runtime stage runs as %q", u)
	}
	if df.cmdErr != nil {
		t.Fatal(df.cmdErr)
	}
	_, problems := parseServe(df.cmd)
	for _, p := range problems {
		t.Errorf("Dockerfile CMD: %s", p)
	}
}

// ---------------------------------------------------------------------------
// Prometheus

type promConfig struct {
	Global struct {
		ScrapeInterval string `yaml:"scrape_interval"`
	} `yaml:"global"`
	ScrapeConfigs []struct {
		JobName        string `yaml:"job_name"`
		ScrapeInterval string `yaml:"scrape_interval"`
		ScrapeTimeout  string `yaml:"scrape_timeout"`
		MetricsPath    string `yaml:"metrics_path"`
		StaticConfigs  []struct {
			Targets []string `yaml:"targets"`
		} `yaml:"static_configs"`
	} `yaml:"scrape_configs"`
}

func TestPrometheusConfig(t *testing.T) {
	c := loadCompose(t)
	data, err := os.ReadFile(prometheusPath)
	if err != nil {
		t.Fatal(err)
	}
	var cfg promConfig
	if err := yaml.Unmarshal(data, &cfg); err != nil {
		t.Fatalf("%s: %v", prometheusPath, err)
	}
	if len(cfg.ScrapeConfigs) == 0 {
		t.Fatalf("%s has no scrape_configs", prometheusPath)
	}

	// The compose file mounts this file where --config.file points.
	prom := c.service(t, svcPrometheus)
	configFile := "/etc/prometheus/prometheus.yml" // the image's default
	promArgs, err := args(prom["command"])
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range promArgs {
		if v, ok := strings.CutPrefix(a, "--config.file="); ok {
			configFile = v
		}
	}
	mounts, err := parseMounts(prom)
	if err != nil {
		t.Fatal(err)
	}
	if !mountsFile(mounts, "deploy/"+prometheusPath, configFile) {
		t.Errorf("prometheus service does not bind-mount deploy/%s at %s", prometheusPath, configFile)
	}

	_, httpPort := splitHostPort(t, "--http", smartgroupsServe(t, c)["--http"])
	want := net.JoinHostPort(svcSmartgroups, strconv.Itoa(httpPort))
	jobs := map[string]bool{}
	scraped := false
	for _, sc := range cfg.ScrapeConfigs {
		if sc.JobName == "" || jobs[sc.JobName] {
			t.Errorf("job_name %q is empty or repeated", sc.JobName)
		}
		jobs[sc.JobName] = true
		for _, st := range sc.StaticConfigs {
			for _, target := range st.Targets {
				host, _ := splitHostPort(t, "target", target)
				if _, ok := c.services[host]; !ok && host != "localhost" {
					t.Errorf("job %q: target %q is neither a compose service nor localhost", sc.JobName, target)
				}
				if target != want {
					continue
				}
				scraped = true
				if sc.MetricsPath != "" && sc.MetricsPath != "/metrics" {
					t.Errorf("job %q scrapes %s, want /metrics", sc.JobName, sc.MetricsPath)
				}
				interval := sc.ScrapeInterval
				if interval == "" {
					interval = cfg.Global.ScrapeInterval
				}
				if d, err := time.ParseDuration(interval); err != nil || d != 5*time.Second {
					t.Errorf("job %q scrape interval %q, want 5s", sc.JobName, interval)
				}
				if sc.ScrapeTimeout != "" {
					if d, err := time.ParseDuration(sc.ScrapeTimeout); err != nil || d > 5*time.Second {
						t.Errorf("job %q scrape_timeout %q exceeds the interval", sc.JobName, sc.ScrapeTimeout)
					}
				}
			}
		}
	}
	if !scraped {
		t.Errorf("no scrape config targets %s", want)
	}
}

// mountsFile reports whether mounts bind the repository path repoRel at target.
func mountsFile(mounts []mount, repoRel, target string) bool {
	for _, m := range mounts {
		if m.kind == "bind" && path.Clean(m.source) == path.Clean(repoRel) && m.target == target {
			return true
		}
	}
	return false
}

// ---------------------------------------------------------------------------
// Grafana

type grafanaDatasources struct {
	APIVersion  int `yaml:"apiVersion"`
	Datasources []struct {
		Name      string `yaml:"name"`
		UID       string `yaml:"uid"`
		Type      string `yaml:"type"`
		URL       string `yaml:"url"`
		IsDefault bool   `yaml:"isDefault"`
	} `yaml:"datasources"`
}

type grafanaProviders struct {
	APIVersion int `yaml:"apiVersion"`
	Providers  []struct {
		Name    string `yaml:"name"`
		Type    string `yaml:"type"`
		Options struct {
			Path string `yaml:"path"`
		} `yaml:"options"`
	} `yaml:"providers"`
}

func loadYAML(t *testing.T, file string, v any) {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
}

// prometheusDatasourceUID returns the uid of the provisioned Prometheus
// datasource, checking the provisioning file on the way.
func prometheusDatasourceUID(t *testing.T) string {
	t.Helper()
	var ds grafanaDatasources
	loadYAML(t, datasourcesPath, &ds)
	if ds.APIVersion != 1 {
		t.Errorf("%s: apiVersion %d, want 1", datasourcesPath, ds.APIVersion)
	}
	uid := ""
	for _, d := range ds.Datasources {
		if d.Type != "prometheus" {
			continue
		}
		if uid != "" {
			t.Errorf("%s: more than one prometheus datasource", datasourcesPath)
		}
		uid = d.UID
		host, _ := splitHostPort(t, "datasource url", strings.TrimPrefix(d.URL, "http://"))
		if host != svcPrometheus {
			t.Errorf("datasource %q points at %q, want the %q service", d.Name, d.URL, svcPrometheus)
		}
	}
	if uid == "" {
		t.Fatalf("%s defines no prometheus datasource with a uid", datasourcesPath)
	}
	return uid
}

func TestGrafanaProvisioning(t *testing.T) {
	c := loadCompose(t)
	prometheusDatasourceUID(t)

	mounts, err := parseMounts(c.service(t, svcGrafana))
	if err != nil {
		t.Fatal(err)
	}
	if !mountsFile(mounts, "./deploy/grafana/provisioning", "/etc/grafana/provisioning") {
		t.Error("grafana does not mount deploy/grafana/provisioning at /etc/grafana/provisioning")
	}
	dashDir := ""
	for _, m := range mounts {
		if m.kind == "bind" && path.Clean(m.source) == "deploy/grafana/dashboards" {
			dashDir = m.target
		}
	}
	if dashDir == "" {
		t.Fatal("grafana does not mount deploy/grafana/dashboards")
	}

	var prov grafanaProviders
	loadYAML(t, dashProvidersPath, &prov)
	if prov.APIVersion != 1 {
		t.Errorf("%s: apiVersion %d, want 1", dashProvidersPath, prov.APIVersion)
	}
	found := false
	for _, p := range prov.Providers {
		if p.Type == "file" && path.Clean(p.Options.Path) == dashDir {
			found = true
		}
	}
	if !found {
		t.Errorf("%s has no file provider reading %s, where the dashboards are mounted", dashProvidersPath, dashDir)
	}
	if _, err := os.Stat(filepath.Join("grafana", "dashboards", filepath.Base(dashboardPath))); err != nil {
		t.Error(err)
	}
}

// ---------------------------------------------------------------------------
// Dashboard

type dsRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type panel struct {
	ID         int      `json:"id"`
	Type       string   `json:"type"`
	Title      string   `json:"title"`
	Datasource *dsRef   `json:"datasource"`
	GridPos    gridPos  `json:"gridPos"`
	Targets    []target `json:"targets"`
	Panels     []panel  `json:"panels"` // collapsed rows
}

type gridPos struct {
	H, W, X, Y int
}

type target struct {
	RefID      string `json:"refId"`
	Expr       string `json:"expr"`
	Datasource *dsRef `json:"datasource"`
}

type dashboard struct {
	UID           string  `json:"uid"`
	Title         string  `json:"title"`
	SchemaVersion int     `json:"schemaVersion"`
	Panels        []panel `json:"panels"`
}

func loadDashboard(t *testing.T) *dashboard {
	t.Helper()
	data, err := os.ReadFile(dashboardPath)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("%s: %v", dashboardPath, err)
	}
	return &d
}

// allPanels flattens rows.
func allPanels(ps []panel) []panel {
	var out []panel
	for _, p := range ps {
		out = append(out, p)
		out = append(out, allPanels(p.Panels)...)
	}
	return out
}

// checkDashboard reports structural problems: ids, targets, datasources,
// layout, and unbalanced expressions.
func checkDashboard(d *dashboard, dsUID string) []string {
	var problems []string
	if d.UID != "smartgroups" {
		problems = append(problems, fmt.Sprintf("uid %q, want smartgroups", d.UID))
	}
	if d.SchemaVersion != 39 {
		problems = append(problems, fmt.Sprintf("schemaVersion %d, want 39", d.SchemaVersion))
	}
	if d.Title == "" {
		problems = append(problems, "no title")
	}
	ids := map[int]string{}
	queries := 0
	panels := allPanels(d.Panels)
	for _, p := range panels {
		name := fmt.Sprintf("panel %d %q", p.ID, p.Title)
		if p.ID <= 0 {
			problems = append(problems, name+": id must be positive")
		} else if other, dup := ids[p.ID]; dup {
			problems = append(problems, fmt.Sprintf("%s: id also used by %q", name, other))
		}
		ids[p.ID] = p.Title
		if g := p.GridPos; g.W < 1 || g.H < 1 || g.X < 0 || g.Y < 0 || g.X+g.W > 24 {
			problems = append(problems, fmt.Sprintf("%s: bad gridPos %+v", name, g))
		}
		if p.Type == "row" {
			continue
		}
		if p.Type == "" || p.Title == "" {
			problems = append(problems, name+": needs a type and a title")
		}
		if p.Datasource == nil || p.Datasource.UID != dsUID {
			problems = append(problems, fmt.Sprintf("%s: datasource %+v, want uid %q", name, p.Datasource, dsUID))
		}
		if len(p.Targets) == 0 {
			problems = append(problems, name+": no targets")
		}
		refs := map[string]bool{}
		for _, tg := range p.Targets {
			queries++
			if strings.TrimSpace(tg.Expr) == "" {
				problems = append(problems, fmt.Sprintf("%s: target %q has an empty expr", name, tg.RefID))
			}
			if tg.RefID == "" || refs[tg.RefID] {
				problems = append(problems, fmt.Sprintf("%s: refId %q empty or repeated", name, tg.RefID))
			}
			refs[tg.RefID] = true
			if tg.Datasource != nil && tg.Datasource.UID != dsUID {
				problems = append(problems, fmt.Sprintf("%s: target %q datasource uid %q, want %q", name, tg.RefID, tg.Datasource.UID, dsUID))
			}
			if !balanced(tg.Expr) {
				problems = append(problems, fmt.Sprintf("%s: unbalanced brackets in %q", name, tg.Expr))
			}
		}
	}
	if queries == 0 {
		problems = append(problems, "no queries at all")
	}
	// Top-level panels must not overlap (rows' nested panels are laid out when
	// expanded, so only the visible ones are compared).
	for i := range d.Panels {
		for j := i + 1; j < len(d.Panels); j++ {
			a, b := d.Panels[i].GridPos, d.Panels[j].GridPos
			if a.X < b.X+b.W && b.X < a.X+a.W && a.Y < b.Y+b.H && b.Y < a.Y+a.H {
				problems = append(problems, fmt.Sprintf("panels %d and %d overlap", d.Panels[i].ID, d.Panels[j].ID))
			}
		}
	}
	return problems
}

// balanced reports whether (), [] and {} nest properly outside quotes.
func balanced(expr string) bool {
	var stack []rune
	pairs := map[rune]rune{')': '(', ']': '[', '}': '{'}
	var quote rune
	for _, r := range expr {
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			}
		case r == '"' || r == '\'' || r == '`':
			quote = r
		case r == '(' || r == '[' || r == '{':
			stack = append(stack, r)
		case pairs[r] != 0:
			if len(stack) == 0 || stack[len(stack)-1] != pairs[r] {
				return false
			}
			stack = stack[:len(stack)-1]
		}
	}
	return len(stack) == 0 && quote == 0
}

var metricToken = regexp.MustCompile(`smartgroups_[a-z_]+`)

// dashboardMetricNames returns the registered names of the smartgroups
// metrics a dashboard queries.
func dashboardMetricNames(d *dashboard) []string {
	names := map[string]bool{}
	for _, p := range allPanels(d.Panels) {
		for _, tg := range p.Targets {
			for _, m := range metricToken.FindAllString(tg.Expr, -1) {
				for _, suffix := range []string{"_bucket", "_sum", "_count"} {
					m = strings.TrimSuffix(m, suffix)
				}
				names[m] = true
			}
		}
	}
	return sortedKeys(names)
}

func TestDashboard(t *testing.T) {
	uid := prometheusDatasourceUID(t)
	d := loadDashboard(t)
	for _, p := range checkDashboard(d, uid) {
		t.Error(p)
	}
}

func TestDashboardMetricsListed(t *testing.T) {
	d := loadDashboard(t)
	used := dashboardMetricNames(d)
	if len(used) == 0 {
		t.Fatal("the dashboard queries no smartgroups_ metric")
	}
	listed := map[string]bool{}
	for _, m := range DashboardMetrics {
		if listed[m] {
			t.Errorf("DashboardMetrics lists %q twice", m)
		}
		listed[m] = true
		if !regexp.MustCompile(`^smartgroups_[a-z_]+$`).MatchString(m) {
			t.Errorf("DashboardMetrics entry %q is not a smartgroups_ metric name", m)
		}
	}
	usedSet := set(used...)
	for _, m := range used {
		if !listed[m] {
			t.Errorf("dashboard queries %s, which DashboardMetrics does not list", m)
		}
	}
	for _, m := range DashboardMetrics {
		if !usedSet[m] {
			t.Errorf("DashboardMetrics lists %s, which the dashboard does not query", m)
		}
	}
}

// ---------------------------------------------------------------------------
// The checks must be able to fail: each one is fed a broken input.

func TestChecksCatchBrokenInput(t *testing.T) {
	mustParse := func(t *testing.T, y string) *compose {
		t.Helper()
		c, err := parseCompose([]byte(y))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	cases := []struct {
		name  string
		check func(*compose) []string
		yaml  string
	}{
		{"unknown key", checkComposeKeys, "services:\n  a:\n    image: x\n    depend_on: [b]\n"},
		{"no image", checkComposeKeys, "services:\n  a:\n    command: [x]\n"},
		{"missing dependency", checkDependsOn, "services:\n  a:\n    image: x\n    depends_on: [b]\n"},
		{"missing dependency (map)", checkDependsOn, "services:\n  a:\n    image: x\n    depends_on:\n      b: {condition: service_started}\n"},
		{"healthy without healthcheck", checkDependsOn, "services:\n  a:\n    image: x\n    depends_on:\n      b: {condition: service_healthy}\n  b:\n    image: x\n"},
		{"bad condition", checkDependsOn, "services:\n  a:\n    image: x\n    depends_on:\n      b: {condition: started}\n  b:\n    image: x\n"},
		{"cycle", checkDependsOn, "services:\n  a:\n    image: x\n    depends_on: [b]\n  b:\n    image: x\n    depends_on: [a]\n"},
		{"missing bind path", func(c *compose) []string { return checkMounts(c, repoRoot) }, "services:\n  a:\n    image: x\n    volumes:\n      - ./deploy/nope.yml:/etc/nope.yml:ro\n"},
		{"bind outside repo", func(c *compose) []string { return checkMounts(c, repoRoot) }, "services:\n  a:\n    image: x\n    volumes:\n      - /etc:/host-etc:ro\n"},
		{"undeclared volume", func(c *compose) []string { return checkMounts(c, repoRoot) }, "services:\n  a:\n    image: x\n    volumes:\n      - data:/data\n"},
		{"missing Dockerfile", func(c *compose) []string { return checkMounts(c, repoRoot) }, "services:\n  a:\n    build: {context: ., dockerfile: Nope.Dockerfile}\n"},
		{"port collision", checkPorts, "services:\n  a:\n    image: x\n    ports: [\"8080:8080\"]\n  b:\n    image: x\n    ports: [\"127.0.0.1:8080:9090\"]\n"},
		{"port collision (long)", checkPorts, "services:\n  a:\n    image: x\n    ports: [\"9000-9002:9000-9002\"]\n  b:\n    image: x\n    ports:\n      - {target: 80, published: 9001}\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if problems := tc.check(mustParse(t, tc.yaml)); len(problems) == 0 {
				t.Errorf("no problem reported for:\n%s", tc.yaml)
			}
		})
	}

	t.Run("serve flags", func(t *testing.T) {
		for _, argv := range [][]string{
			{"run", "--brokers", "k:9092"},
			{"serve", "--broker", "k:9092"},
			{"serve", "--http"},
			{"serve", "--http", "--data-dir", "/d"},
			{"serve", "extra"},
			{"serve", "--clock=wall", "--clock", "event"},
		} {
			if _, problems := parseServe(argv); len(problems) == 0 {
				t.Errorf("parseServe(%q) reported nothing", argv)
			}
		}
		if _, problems := parseServe([]string{"serve", "--brokers", "kafka:9092", "--http=0.0.0.0:8080", "--embedded-broker", "127.0.0.1:9092"}); len(problems) != 0 {
			t.Errorf("valid serve command rejected: %v", problems)
		}
	})

	t.Run("dashboard", func(t *testing.T) {
		d := &dashboard{UID: "smartgroups", Title: "x", SchemaVersion: 39, Panels: []panel{
			{ID: 1, Type: "timeseries", Title: "a", Datasource: &dsRef{UID: "prometheus"}, GridPos: gridPos{H: 8, W: 12},
				Targets: []target{{RefID: "A", Expr: "rate(smartgroups_x_total[1m])"}}},
			{ID: 1, Type: "timeseries", Title: "b", Datasource: &dsRef{UID: "other"}, GridPos: gridPos{H: 8, W: 12, X: 6},
				Targets: []target{{RefID: "A", Expr: ""}, {RefID: "A", Expr: "sum(rate(x[1m])"}}},
			{ID: 3, Type: "stat", Title: "c", Datasource: &dsRef{UID: "prometheus"}, GridPos: gridPos{H: 8, W: 12, Y: 8}},
		}}
		problems := strings.Join(checkDashboard(d, "prometheus"), "\n")
		for _, want := range []string{"id also used", "want uid", "empty expr", "repeated", "unbalanced", "no targets", "overlap"} {
			if !strings.Contains(problems, want) {
				t.Errorf("checkDashboard did not report %q; got:\n%s", want, problems)
			}
		}
		got := dashboardMetricNames(&dashboard{Panels: []panel{{Targets: []target{
			{Expr: "histogram_quantile(0.9, sum by (le) (rate(smartgroups_a_seconds_bucket[5m]))) / smartgroups_a_seconds_count + smartgroups_b_total"},
		}}}})
		if strings.Join(got, ",") != "smartgroups_a_seconds,smartgroups_b_total" {
			t.Errorf("dashboardMetricNames = %v", got)
		}
	})
}

// ---------------------------------------------------------------------------

func set(items ...string) map[string]bool {
	m := make(map[string]bool, len(items))
	for _, s := range items {
		m[s] = true
	}
	return m
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
