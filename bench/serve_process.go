package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/smartgroups/smartgroups/engine"
)

// startServeProcess runs `<ServeCommand> serve` as a separate process on
// the benchmark's broker and topics with the given data directory, and
// waits until its /readyz answers. Its memory is then its own: neither the broker nor the
// generator is in it.
func (r *runner) startServeProcess(ctx context.Context, clock engine.ClockMode, dataDir string) (*serveInstance, func() error, error) {
	addr, err := freeLoopbackAddr()
	if err != nil {
		return nil, nil, err
	}
	clk := "wall"
	if clock == engine.ClockEvent {
		clk = "event"
	}
	args := append(r.o.ServeCommand[1:len(r.o.ServeCommand):len(r.o.ServeCommand)], "serve",
		"--brokers", strings.Join(r.kc.Brokers, ","),
		"--topic-prefix", r.kc.TopicPrefix,
		"--group-id", r.kc.GroupID,
		"--transactional-id-prefix", r.kc.TransactionalIDPrefix,
		"--partitions", strconv.Itoa(int(r.kc.Partitions)),
		"--data-dir", dataDir,
		"--http", addr,
		"--clock", clk,
		"--batch-size", strconv.Itoa(r.o.BatchSize),
		"--log-level", "warn")
	if r.o.StateCacheBytes > 0 {
		args = append(args, "--state-cache-bytes", strconv.FormatInt(r.o.StateCacheBytes, 10))
	}
	cmd := exec.Command(r.o.ServeCommand[0], args...)
	// The benchmark's own settings must not leak into serve's flags.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SMARTGROUPS_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Stdout, cmd.Stderr = r.o.Log, r.o.Log
	if err := cmd.Start(); err != nil {
		return nil, nil, fmt.Errorf("start %s: %w", r.o.ServeCommand[0], err)
	}
	in := &serveInstance{done: make(chan error, 1), pid: cmd.Process.Pid, metrics: "http://" + addr + "/metrics"}
	go func() { in.done <- cmd.Wait() }()
	stopped := false
	stop := func() error {
		if stopped {
			return nil
		}
		stopped = true
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-in.done:
			return err
		case <-time.After(2 * time.Minute):
			_ = cmd.Process.Kill()
			return fmt.Errorf("serve process %d did not stop within 2 minutes of SIGTERM", in.pid)
		}
	}
	deadline := time.Now().Add(10 * time.Minute)
	for {
		select {
		case err := <-in.done:
			in.done <- err
			return nil, nil, fmt.Errorf("serve exited before ready: %w", err)
		case <-ctx.Done():
			_ = stop()
			return nil, nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if ready(ctx, "http://"+addr+"/readyz") {
			return in, stop, nil
		}
		if time.Now().After(deadline) {
			_ = stop()
			return nil, nil, errors.New("serve not ready after 10 minutes")
		}
	}
}

func ready(ctx context.Context, url string) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	_ = resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// freeLoopbackAddr returns a loopback address with a port free right now.
func freeLoopbackAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("free port: %w", err)
	}
	addr := ln.Addr().String()
	return addr, ln.Close()
}
