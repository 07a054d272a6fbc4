package demo

import (
	"fmt"
	"strings"
)

// MembersGroup is the smart group whose members the demo banner links to.
// Its rule reads only the plan and seats of the initial load, so it has
// members from the first seconds (other groups fill up as the live stream
// brings activities) and keeps them while the demo runs.
const MembersGroup = "paying-teams"

// Banner is what `smartgroups demo` prints once it is ready: the URL of
// the admin console first, then the commands to look at the API, the
// metrics and the output topic.
type Banner struct {
	// HTTPAddr is the host:port of the HTTP API.
	HTTPAddr string
	// Broker is the host:port of the Kafka broker.
	Broker string
	// TopicPrefix is the prefix of every topic name.
	TopicPrefix string
	// Spot is the spot of the example requests.
	Spot string
	// Token, when set, is sent as the bearer token of every /v1 request the
	// banner prints.
	Token string
}

// String renders the banner.
func (b Banner) String() string {
	curl := "curl"
	if b.Token != "" {
		curl += " -H " + shellQuote("Authorization: Bearer "+b.Token)
	}
	base := "http://" + b.HTTPAddr
	var s strings.Builder
	s.WriteString("\nsmartgroups demo is running.\n")
	signIn := "(open it in a browser)"
	if b.Token != "" {
		signIn = "(open it in a browser; sign in with the API token)"
	}
	fmt.Fprintf(&s, "  console:     %s/ %s\n", base, signIn)
	fmt.Fprintf(&s, "  groups:      %s %s/v1/spots/%s/groups\n", curl, base, b.Spot)
	fmt.Fprintf(&s, "  members:     %s %s/v1/spots/%s/groups/%s/members\n", curl, base, b.Spot, MembersGroup)
	fmt.Fprintf(&s, "  API doc:     %s %s/v1/openapi.yaml\n", curl, base)
	fmt.Fprintf(&s, "  metrics:     %s/metrics\n", base)
	fmt.Fprintf(&s, "  readiness:   %s/readyz\n", base)
	fmt.Fprintf(&s, "  Kafka:       %s (any Kafka client works; read the output read_committed), for example\n", b.Broker)
	fmt.Fprintf(&s, "               kcat -b %s -C -t %smemberships -X isolation.level=read_committed -f '%%k %%s\\n'\n", b.Broker, b.TopicPrefix)
	s.WriteString("Ctrl-C stops.\n\n")
	return s.String()
}

// shellQuote quotes s as one shell word: in double quotes when nothing in it
// is special there, in single quotes otherwise.
func shellQuote(s string) string {
	if !strings.ContainsAny(s, "\"$`\\!'") {
		return `"` + s + `"`
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
