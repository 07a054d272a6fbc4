package deploy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"

	"github.com/smartgroups/smartgroups/connectors/kafka"
)

// The compose file takes the admin token of the HTTP API from the
// environment, with the required-variable syntax and this message.
const (
	tokenVar     = "SMARTGROUPS_API_TOKEN"
	tokenMessage = "set SMARTGROUPS_API_TOKEN to the admin token of the HTTP API"
	testToken    = "deploy-test-token-0123456789"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// loadProject loads a compose file the way `docker compose config` does:
// YAML, interpolation of ${...} from env (a required variable that is unset
// or empty is an error), validation against the Compose specification's
// schema, then normalization into a project. content, when not nil, is used
// instead of the file's bytes.
func loadProject(file string, content []byte, env map[string]string) (*types.Project, error) {
	abs, err := filepath.Abs(file)
	if err != nil {
		return nil, fmt.Errorf("compose file path: %w", err)
	}
	details := types.ConfigDetails{
		WorkingDir:  filepath.Dir(abs),
		ConfigFiles: []types.ConfigFile{{Filename: abs, Content: content}},
		Environment: env,
	}
	p, err := loader.LoadWithContext(context.Background(), details, func(o *loader.Options) {
		o.SetProjectName("smartgroups", true)
	})
	if err != nil {
		return nil, fmt.Errorf("loading %s: %w", file, err)
	}
	return p, nil
}

// TestComposeConfig: with the token set, the compose file loads like
// `docker compose config` would load it, and the smartgroups service gets
// the token in its environment.
func TestComposeConfig(t *testing.T) {
	p, err := loadProject(composePath, nil, map[string]string{tokenVar: testToken})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{svcKafka, svcSmartgroups, svcPrometheus, svcGrafana} {
		if _, ok := p.Services[name]; !ok {
			t.Errorf("service %q missing from the loaded project", name)
		}
	}
	v := p.Services[svcSmartgroups].Environment[tokenVar]
	if v == nil || *v != testToken {
		t.Errorf("smartgroups %s = %v, want the token given to compose", tokenVar, v)
	}
}

// TestComposeRequiresToken: without the token (unset or empty) the compose
// file does not load, and the error says what to set.
func TestComposeRequiresToken(t *testing.T) {
	for name, env := range map[string]map[string]string{
		"unset": {"GRAFANA_ADMIN_PASSWORD": "x"},
		"empty": {tokenVar: ""},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := loadProject(composePath, nil, env)
			if err == nil {
				t.Fatalf("the compose file loads with %s %s", tokenVar, name)
			}
			if !strings.Contains(err.Error(), tokenMessage) {
				t.Errorf("error %q does not contain %q", err, tokenMessage)
			}
		})
	}
}

// TestComposeLoaderCatchesBrokenInput: the loader is a real check, not a
// YAML parser: schema and reference errors fail.
func TestComposeLoaderCatchesBrokenInput(t *testing.T) {
	for _, y := range []string{
		"services:\n  a:\n    image: x\n    depend_on: [b]\n",
		"services:\n  a:\n    image: x\n    depends_on: [b]\n",
		"services:\n  a:\n    image: x\n    ports: [\"not a port\"]\n",
		"services:\n  a:\n    image: x\n    environment:\n      T: \"${T:?set T}\"\n",
	} {
		if _, err := loadProject(composePath, []byte(y), nil); err == nil {
			t.Errorf("loaded without error:\n%s", y)
		}
	}
}

// TestComposeServeStarts runs the smartgroups service of docker-compose.yml
// as compose would: its command line and its environment (token set), with
// the real binary. Only what cannot exist outside containers changes: the
// broker address becomes a loopback broker, the HTTP port a free one (same
// host), the data directory a temporary one. The stack cannot start unless
// this reaches /readyz.
func TestComposeServeStarts(t *testing.T) {
	p, err := loadProject(composePath, nil, map[string]string{tokenVar: testToken})
	if err != nil {
		t.Fatal(err)
	}
	svc := p.Services[svcSmartgroups]
	var env []string
	for k, v := range svc.Environment {
		if v != nil {
			env = append(env, k+"="+*v)
		}
	}
	sort.Strings(env)
	serveUntilReady(t, svc.Command, env)
}

// TestDockerfileServeStarts runs the Dockerfile's default command with the
// environment its comments document (the token), and checks that the
// command alone is refused, so the documentation is needed.
func TestDockerfileServeStarts(t *testing.T) {
	df := loadDockerfile(t)
	if df.cmdErr != nil {
		t.Fatal(df.cmdErr)
	}
	if !strings.Contains(df.text, tokenVar) {
		t.Errorf("the Dockerfile does not document %s", tokenVar)
	}
	out, err := runServeBriefly(t, df.cmd, nil)
	if err == nil || !strings.Contains(out, "no API token") {
		t.Errorf("the Dockerfile's command without a token: err %v, output %q; want a refusal naming the token", err, out)
	}
	serveUntilReady(t, df.cmd, []string{tokenVar + "=" + testToken})
}

var (
	binOnce sync.Once
	binDir  string
	binPath string
	binErr  error
)

// binary builds cmd/smartgroups once per test run.
func binary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		if binDir, binErr = os.MkdirTemp("", "smartgroups-deploy-"); binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "smartgroups")
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/smartgroups")
		cmd.Dir = repoRoot
		if out, err := cmd.CombinedOutput(); err != nil {
			binErr = fmt.Errorf("go build: %w\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// localize rewrites a serve command line for a run on this machine: the
// value of --brokers becomes broker, --http keeps its host on port port,
// --data-dir becomes dataDir. Each of the three must be present.
func localize(argv []string, broker string, port int, dataDir string) ([]string, error) {
	out := append([]string(nil), argv...)
	seen := map[string]bool{}
	for i := 0; i < len(out); i++ {
		name, val, inline := strings.Cut(out[i], "=")
		switch name {
		case "--brokers", "--http", "--data-dir":
		default:
			continue
		}
		vi := i
		if !inline {
			if i+1 >= len(out) {
				return nil, fmt.Errorf("%s has no value", name)
			}
			vi, val = i+1, out[i+1]
			i++
		}
		switch name {
		case "--brokers":
			val = broker
		case "--http":
			host, _, err := net.SplitHostPort(val)
			if err != nil {
				return nil, fmt.Errorf("--http %q: %w", val, err)
			}
			val = net.JoinHostPort(host, strconv.Itoa(port))
		case "--data-dir":
			val = dataDir
		}
		if inline {
			out[vi] = name + "=" + val
		} else {
			out[vi] = val
		}
		seen[name] = true
	}
	for _, name := range []string{"--brokers", "--http", "--data-dir"} {
		if !seen[name] {
			return nil, fmt.Errorf("command %q has no %s", argv, name)
		}
	}
	return out, nil
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// serveProc is the binary running a localized serve command line.
type serveProc struct {
	cmd    *exec.Cmd
	log    string        // file with its stdout and stderr
	port   int           // its HTTP port
	exited chan struct{} // closed when it has exited
	err    error         // its exit error, once exited is closed
}

// startServe starts the binary with argv localized (a fresh loopback
// broker, a free port, a temporary data dir) and exactly env as its
// environment. The test's cleanup kills it if it still runs.
func startServe(t *testing.T, argv, env []string) *serveProc {
	t.Helper()
	bin := binary(t)
	dir := t.TempDir()
	broker, err := kafka.StartEmbedded(kafka.EmbeddedConfig{Addr: "127.0.0.1:0", DataDir: filepath.Join(dir, "broker")})
	if err != nil {
		t.Fatalf("starting a loopback broker: %v", err)
	}
	t.Cleanup(func() { _ = broker.Close() })
	port := freePort(t)
	args, err := localize(argv, broker.Addr(), port, filepath.Join(dir, "data"))
	if err != nil {
		t.Fatal(err)
	}
	logFile, err := os.Create(filepath.Join(dir, "serve.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close() // the child has its own descriptor
	p := &serveProc{cmd: exec.Command(bin, args...), log: logFile.Name(), port: port, exited: make(chan struct{})}
	p.cmd.Env = env
	p.cmd.Stdout, p.cmd.Stderr = logFile, logFile
	t.Logf("running smartgroups %s (%d environment variables)", strings.Join(args, " "), len(env))
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
	})
	return p
}

// output is what the process printed so far.
func (p *serveProc) output() string {
	b, err := os.ReadFile(p.log)
	if err != nil {
		return fmt.Sprintf("(reading its output: %v)", err)
	}
	return string(b)
}

// wait waits at most d for the process to exit; exited is false when it
// still runs, and err is its exit error when it has exited.
func (p *serveProc) wait(d time.Duration) (exited bool, err error) {
	select {
	case <-p.exited:
		return true, p.err
	case <-time.After(d):
		return false, nil
	}
}

// runServeBriefly runs the command and returns its output and exit error
// once it exits by itself, within 20 seconds.
func runServeBriefly(t *testing.T, argv, env []string) (string, error) {
	t.Helper()
	p := startServe(t, argv, env)
	exited, err := p.wait(20 * time.Second)
	if !exited {
		return p.output(), errors.New("still running after 20s")
	}
	return p.output(), err
}

// serveUntilReady runs the command until /readyz answers 200 on the
// loopback address of its HTTP port, then stops it with SIGTERM and
// requires a clean exit.
func serveUntilReady(t *testing.T, argv, env []string) {
	t.Helper()
	p := startServe(t, argv, env)
	url := "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(p.port)) + "/readyz"
	hc := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(90 * time.Second)
	for ready := false; !ready; {
		if exited, err := p.wait(200 * time.Millisecond); exited {
			t.Fatalf("smartgroups exited before it was ready (%v):\n%s", err, p.output())
		}
		if res, err := hc.Get(url); err == nil {
			ready = res.StatusCode == http.StatusOK
			_ = res.Body.Close()
		}
		if !ready && time.Now().After(deadline) {
			t.Fatalf("%s did not answer 200 within 90s:\n%s", url, p.output())
		}
	}

	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	exited, err := p.wait(60 * time.Second)
	switch {
	case !exited:
		t.Errorf("smartgroups still running 60s after SIGTERM:\n%s", p.output())
	case err != nil:
		t.Errorf("smartgroups did not exit cleanly on SIGTERM (%v):\n%s", err, p.output())
	}
}
