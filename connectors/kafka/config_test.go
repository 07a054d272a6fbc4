package kafka

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/smartgroups/smartgroups/engine"
)

func TestDefaultConfigValid(t *testing.T) {
	cfg := DefaultConfig()
	require.NoError(t, cfg.Validate())
	require.Equal(t, "smartgroups.", cfg.TopicPrefix)
	require.Equal(t, int32(6), cfg.Partitions)
	require.Equal(t, "smartgroups", cfg.GroupID)
	require.Equal(t, []string{"smartgroups.profiles", "smartgroups.activities", "smartgroups.properties"}, cfg.MemberTopics())
	require.Equal(t, "smartgroups.definitions", cfg.Topic(engine.KindDefinitions))
	require.Equal(t, "smartgroups.memberships", cfg.MembershipsTopic())
	require.Equal(t, "smartgroups.deadletter", cfg.DeadLetterTopic())
	require.Equal(t, "smartgroups.progress", cfg.ProgressTopic())
	require.Equal(t, "smartgroups-txn-4", cfg.TransactionalID(4))
}

func TestConfigKind(t *testing.T) {
	cfg := DefaultConfig()
	for _, tc := range []struct {
		topic string
		kind  engine.Kind
		ok    bool
	}{
		{"smartgroups.profiles", engine.KindProfiles, true},
		{"smartgroups.activities", engine.KindActivities, true},
		{"smartgroups.properties", engine.KindProperties, true},
		{"smartgroups.definitions", engine.KindDefinitions, true},
		{"smartgroups.memberships", "", false},
		{"other.profiles", "", false},
		{"profiles", "", false},
	} {
		k, ok := cfg.Kind(tc.topic)
		require.Equal(t, tc.ok, ok, tc.topic)
		require.Equal(t, tc.kind, k, tc.topic)
	}
}

func TestConfigValidate(t *testing.T) {
	dir := t.TempDir()
	ca, cert, key := writeTestCerts(t, dir)
	for _, tc := range []struct {
		name string
		edit func(*Config)
		want string // substring of the error; "" = valid
	}{
		{"defaults", func(*Config) {}, ""},
		{"no brokers", func(c *Config) { c.Brokers = nil }, "no brokers"},
		{"empty broker", func(c *Config) { c.Brokers = []string{" "} }, "empty broker"},
		{"bad prefix", func(c *Config) { c.TopicPrefix = "a b" }, "topic prefix"},
		{"long prefix", func(c *Config) { c.TopicPrefix = strings.Repeat("a", 249) }, "too long"},
		{"empty prefix ok", func(c *Config) { c.TopicPrefix = "" }, ""},
		{"partitions", func(c *Config) { c.Partitions = 0 }, "partitions"},
		{"replication", func(c *Config) { c.ReplicationFactor = 0 }, "replication"},
		{"group", func(c *Config) { c.GroupID = "" }, "group id"},
		{"txn prefix", func(c *Config) { c.TransactionalIDPrefix = "" }, "transactional id"},
		{"txn timeout", func(c *Config) { c.TransactionTimeout = time.Millisecond }, "transaction timeout"},
		{"tls off with files", func(c *Config) { c.TLS.CAFile = ca }, "not enabled"},
		{"tls ok", func(c *Config) { c.TLS = TLSConfig{Enable: true, CAFile: ca, CertFile: cert, KeyFile: key} }, ""},
		{"tls cert without key", func(c *Config) { c.TLS = TLSConfig{Enable: true, CertFile: cert} }, "together"},
		{"tls missing ca", func(c *Config) { c.TLS = TLSConfig{Enable: true, CAFile: filepath.Join(dir, "nope.pem")} }, "CA file"},
		{"sasl plain", func(c *Config) { c.SASL = SASLConfig{Mechanism: "PLAIN", User: "u", Password: "p"} }, ""},
		{"sasl scram256", func(c *Config) { c.SASL = SASLConfig{Mechanism: "scram-sha-256", User: "u", Password: "p"} }, ""},
		{"sasl scram512", func(c *Config) { c.SASL = SASLConfig{Mechanism: "SCRAM-SHA-512", User: "u", Password: "p"} }, ""},
		{"sasl no user", func(c *Config) { c.SASL = SASLConfig{Mechanism: "plain"} }, "needs a user"},
		{"sasl unknown", func(c *Config) { c.SASL = SASLConfig{Mechanism: "gssapi", User: "u"} }, "unknown SASL"},
		{"sasl user without mechanism", func(c *Config) { c.SASL = SASLConfig{User: "u"} }, "without a SASL mechanism"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			tc.edit(&cfg)
			err := cfg.Validate()
			if tc.want == "" {
				require.NoError(t, err)
				opts, err := cfg.ClientOpts()
				require.NoError(t, err)
				require.NotEmpty(t, opts)
				return
			}
			require.ErrorContains(t, err, tc.want)
		})
	}
}

func TestConfigValidateJoinsErrors(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Brokers = nil
	cfg.GroupID = ""
	err := cfg.Validate()
	require.ErrorContains(t, err, "no brokers")
	require.ErrorContains(t, err, "group id")
}

func TestClientOptsBadCA(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "ca.pem")
	require.NoError(t, os.WriteFile(bad, []byte("not a certificate"), 0o600))
	cfg := DefaultConfig()
	cfg.TLS = TLSConfig{Enable: true, CAFile: bad}
	require.NoError(t, cfg.Validate())
	_, err := cfg.ClientOpts()
	require.ErrorContains(t, err, "no PEM certificate")
}

// writeTestCerts writes a self-signed CA (also used as client cert) and key.
func writeTestCerts(t *testing.T, dir string) (ca, cert, key string) {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "smartgroups-test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth},
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	require.NoError(t, err)
	kder, err := x509.MarshalECPrivateKey(priv)
	require.NoError(t, err)
	ca = filepath.Join(dir, "ca.pem")
	cert = filepath.Join(dir, "cert.pem")
	key = filepath.Join(dir, "key.pem")
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	require.NoError(t, os.WriteFile(ca, certPEM, 0o600))
	require.NoError(t, os.WriteFile(cert, certPEM, 0o600))
	require.NoError(t, os.WriteFile(key, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600))
	return ca, cert, key
}
