package serve

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/smartgroups/smartgroups/engine"
	"github.com/smartgroups/smartgroups/internal/console"
	"github.com/smartgroups/smartgroups/internal/httpapi"
)

// newAPI builds the HTTP API with its own Kafka client, which produces
// definitions and describes the consumer group to find the peers.
func (s *server) newAPI(partitions int32, advertise string) (*httpapi.API, func(), error) {
	cfg := s.cfg
	opts, err := cfg.Kafka.ClientOpts()
	if err != nil {
		return nil, nil, err
	}
	cl, err := kgo.NewClient(append(opts, kgo.ClientID(cfg.Kafka.ClientID+"-api"),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))...)
	if err != nil {
		return nil, nil, fmt.Errorf("serve: kafka client of the HTTP API: %w", err)
	}
	topic := cfg.Kafka.Topic(engine.KindDefinitions)
	adm := kadm.NewClient(cl)
	api, err := httpapi.New(httpapi.Config{
		Engine:           s.eng,
		DefinitionsTopic: topic,
		Produce: func(ctx context.Context, key string, value []byte) (int64, error) {
			r, err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Partition: 0, Key: []byte(key), Value: value}).First()
			if err != nil {
				return 0, err
			}
			return r.Offset, nil
		},
		DefinitionsEnd: func(ctx context.Context) (int64, error) {
			offs, err := adm.ListCommittedOffsets(ctx, topic)
			if err != nil {
				return 0, err
			}
			o, ok := offs.Lookup(topic, 0)
			if !ok {
				return 0, fmt.Errorf("serve: no offsets of %s", topic)
			}
			return o.Offset, o.Err
		},
		Partitions:   partitions,
		Peers:        httpapi.NewGroupPeers(adm, cfg.Kafka.GroupID, cfg.Kafka.Topic(engine.KindProfiles)),
		Self:         advertise,
		APIToken:     cfg.APIToken,
		SpotTokens:   cfg.SpotTokens,
		MaxBodyBytes: cfg.MaxRequestBytes,
		Ready:        s.ready.Load,
		Sizes:        s.st,
		Logger:       s.log,
	})
	if err != nil {
		cl.Close()
		return nil, nil, err
	}
	return api, cl.Close, nil
}

// advertiseAddr is the HTTP address given to the other instances: the
// configured one, else the bound one (with the host name when bound to
// every interface).
func advertiseAddr(configured, bound string) string {
	if configured != "" {
		return configured
	}
	host, port, err := net.SplitHostPort(bound)
	if err != nil {
		return bound
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		if h, err := os.Hostname(); err == nil {
			return net.JoinHostPort(h, port)
		}
	}
	return bound
}

// serveHTTP serves the API, /metrics, /healthz and /readyz on ln until the
// returned stop function is called.
func (s *server) serveHTTP(ln net.Listener, reg *prometheus.Registry, api *httpapi.API) func() {
	mux := http.NewServeMux()
	mux.Handle("/v1/", api.Handler())
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	// Go profiles for operators: admin token only (open on a loopback-only
	// listener without tokens, like the API).
	mux.Handle("/debug/pprof/", api.AdminOnly(http.HandlerFunc(pprof.Index)))
	mux.Handle("/debug/pprof/cmdline", api.AdminOnly(http.HandlerFunc(pprof.Cmdline)))
	mux.Handle("/debug/pprof/profile", api.AdminOnly(http.HandlerFunc(pprof.Profile)))
	mux.Handle("/debug/pprof/symbol", api.AdminOnly(http.HandlerFunc(pprof.Symbol)))
	mux.Handle("/debug/pprof/trace", api.AdminOnly(http.HandlerFunc(pprof.Trace)))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		switch {
		case !s.ready.Load():
			http.Error(w, "not ready: starting (loading definitions) or stopping", http.StatusServiceUnavailable)
			return
		case s.restoring.Load() > 0:
			http.Error(w, "not ready: restoring partitions", http.StatusServiceUnavailable)
			return
		case s.health != nil && s.health.Down():
			http.Error(w, "not ready: Kafka is unreachable", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	// The admin console: every other path.
	spotTokens := make([]string, 0, len(s.cfg.SpotTokens))
	for _, st := range s.cfg.SpotTokens {
		spotTokens = append(spotTokens, st.Spot+":"+st.Token)
	}
	con, err := console.New(console.Config{API: api.Handler(), Open: s.cfg.APIToken == "" && len(s.cfg.SpotTokens) == 0,
		Secret: console.SecretFromTokens(s.cfg.APIToken, spotTokens), Logger: s.log})
	if err != nil {
		s.log.Error("the admin console is off", "err", err)
	} else {
		mux.Handle("/", con.Handler())
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("http server", "err", err)
		}
	}()
	s.log.Info("http listening", "addr", ln.Addr().String())
	return func() {
		api.Close() // ends waits of requests in flight
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}
}
