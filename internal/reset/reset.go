package reset

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/smartgroups/smartgroups/connectors/kafka"
	"github.com/smartgroups/smartgroups/state"
)

// ErrLive is wrapped by the error of a reset refused because the
// deployment is running.
var ErrLive = errors.New("reset: the deployment is running")

// Config configures a reset.
type Config struct {
	// Kafka names the brokers, the topic prefix, the group id, the
	// transactional id prefix and the owners topic of the deployment.
	Kafka kafka.Config
	// DataDir, when set, is an instance's data dir: its state (DataDir/state)
	// is deleted. The embedded broker's data (DataDir/broker) is kept.
	DataDir string
	// DeleteOutputs also deletes the memberships and access topics.
	DeleteOutputs bool
	// LiveWait is how long the group is watched after its static members
	// were removed: a running instance joins again within a few
	// heartbeats (3s). Default 10s.
	LiveWait time.Duration
}

// Member is a consumer group member.
type Member struct {
	InstanceID string // empty for a dynamic member
	ClientID   string
	Host       string
}

func (m Member) String() string {
	id := m.InstanceID
	if id == "" {
		id = "(dynamic member)"
	}
	return fmt.Sprintf("%s (client %s, host %s)", id, m.ClientID, m.Host)
}

// Plan is what a reset deletes.
type Plan struct {
	Group       string
	GroupExists bool
	Members     []Member
	Topics      []string // existing topics to delete
	Claims      []string // output topics whose claim is released
	StateDir    string   // local state to delete; empty: none
}

// Print writes the plan for people.
func (p Plan) Print(w io.Writer) {
	pr := func(format string, args ...any) { _, _ = fmt.Fprintf(w, format, args...) }
	if p.GroupExists {
		pr("consumer group %s", p.Group)
		if len(p.Members) > 0 {
			pr(", with %d member(s) that must not be running:", len(p.Members))
			for _, m := range p.Members {
				pr("\n    %s", m)
			}
		}
		pr("\n")
	} else {
		pr("consumer group %s: does not exist\n", p.Group)
	}
	if len(p.Topics) == 0 {
		pr("topics: none to delete\n")
	}
	for _, t := range p.Topics {
		pr("topic %s\n", t)
	}
	for _, t := range p.Claims {
		pr("claim on %s (owners topic)\n", t)
	}
	if p.StateDir != "" {
		pr("local state %s\n", p.StateDir)
	}
}

// Resetter resets one deployment.
type Resetter struct {
	cfg Config
	cl  *kgo.Client
	adm *kadm.Client
}

// New connects to the brokers of cfg.Kafka; Close it.
func New(cfg Config) (*Resetter, error) {
	if err := cfg.Kafka.Validate(); err != nil {
		return nil, err
	}
	if cfg.LiveWait <= 0 {
		cfg.LiveWait = 10 * time.Second
	}
	opts, err := cfg.Kafka.ClientOpts()
	if err != nil {
		return nil, err
	}
	cl, err := kgo.NewClient(append(opts, kgo.ClientID(cfg.Kafka.ClientID+"-reset"))...)
	if err != nil {
		return nil, fmt.Errorf("reset: kafka client: %w", err)
	}
	return &Resetter{cfg: cfg, cl: cl, adm: kadm.NewClient(cl)}, nil
}

// Close closes the client.
func (r *Resetter) Close() { r.cl.Close() }

// StateDir is the state directory of a data dir.
func StateDir(dataDir string) string { return filepath.Join(dataDir, "state") }

// CheckStateUnused refuses a data dir whose state store is open in a
// running process (serve holds its lock).
func CheckStateUnused(dataDir string) error {
	dir := StateDir(dataDir)
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	st, err := state.Open(dir, state.Options{})
	if err != nil {
		return fmt.Errorf("%w: the state in %s cannot be opened (is serve running on it?): %w", ErrLive, dir, err)
	}
	if err := st.Close(); err != nil {
		return fmt.Errorf("reset: closing %s: %w", dir, err)
	}
	return nil
}

// Inspect returns what a reset would delete.
func (r *Resetter) Inspect(ctx context.Context) (Plan, error) {
	kc := r.cfg.Kafka
	p := Plan{Group: kc.GroupID}
	members, exists, err := r.members(ctx)
	if err != nil {
		return p, err
	}
	p.Members, p.GroupExists = members, exists
	candidates := []string{kc.ChangelogTopic(), kc.ProgressTopic()}
	outputs := []string{kc.MembershipsTopic(), kc.AccessTopic()}
	if r.cfg.DeleteOutputs {
		candidates = append(candidates, outputs...)
	}
	details, err := r.adm.ListTopics(kadm.WithAuthorizedOps(ctx), candidates...)
	if err != nil {
		return p, fmt.Errorf("reset: listing topics: %w", err)
	}
	for _, t := range candidates {
		if d, ok := details[t]; ok && d.Err == nil {
			p.Topics = append(p.Topics, t)
		}
	}
	owners, err := kafka.NewOwners(kc)
	if err != nil {
		return p, err
	}
	defer owners.Close()
	claims, err := owners.Read(ctx)
	if err != nil {
		return p, err
	}
	me := kafka.ServeOwner(kc)
	for _, t := range outputs {
		if c, ok := claims[t]; ok && c.Same(me) {
			p.Claims = append(p.Claims, t)
		}
	}
	if r.cfg.DataDir != "" {
		if _, err := os.Stat(StateDir(r.cfg.DataDir)); err == nil {
			p.StateDir = StateDir(r.cfg.DataDir)
		}
	}
	return p, nil
}

// members describes the group: its members, and whether it exists.
func (r *Resetter) members(ctx context.Context) ([]Member, bool, error) {
	gs, err := r.adm.DescribeGroups(ctx, r.cfg.Kafka.GroupID)
	if err != nil {
		return nil, false, fmt.Errorf("reset: describing group %s: %w", r.cfg.Kafka.GroupID, err)
	}
	g, ok := gs[r.cfg.Kafka.GroupID]
	if !ok || errors.Is(g.Err, kerr.GroupIDNotFound) || g.State == "Dead" {
		return nil, false, nil
	}
	if g.Err != nil {
		return nil, false, fmt.Errorf("reset: describing group %s: %w", r.cfg.Kafka.GroupID, g.Err)
	}
	var out []Member
	for _, m := range g.Members {
		mm := Member{ClientID: m.ClientID, Host: m.ClientHost}
		if m.InstanceID != nil {
			mm.InstanceID = *m.InstanceID
		}
		out = append(out, mm)
	}
	return out, true, nil
}

// Execute carries a plan out: it removes the group's static members and
// refuses if any comes back (ErrLive), then deletes the group, the
// topics, the claims and the local state.
func (r *Resetter) Execute(ctx context.Context, p Plan, log io.Writer) error {
	pr := func(format string, args ...any) { _, _ = fmt.Fprintf(log, format, args...) }
	kc := r.cfg.Kafka
	if r.cfg.DataDir != "" {
		if err := CheckStateUnused(r.cfg.DataDir); err != nil {
			return err
		}
	}
	if p.GroupExists {
		if err := r.removeMembers(ctx, pr); err != nil {
			return err
		}
		resps, err := r.adm.DeleteGroups(ctx, kc.GroupID)
		if err == nil {
			err = resps.Error()
		}
		switch {
		case err == nil:
			pr("deleted consumer group %s\n", kc.GroupID)
		case errors.Is(err, kerr.GroupIDNotFound):
		case errors.Is(err, kerr.NonEmptyGroup):
			return fmt.Errorf("%w: consumer group %s has members again; stop every instance first", ErrLive, kc.GroupID)
		default:
			return fmt.Errorf("reset: deleting consumer group %s: %w", kc.GroupID, err)
		}
	}
	if len(p.Topics) > 0 {
		resps, err := r.adm.DeleteTopics(ctx, p.Topics...)
		if err != nil {
			return fmt.Errorf("reset: deleting topics: %w", err)
		}
		for _, t := range p.Topics {
			rsp, ok := resps[t]
			if ok && rsp.Err != nil && !errors.Is(rsp.Err, kerr.UnknownTopicOrPartition) {
				return fmt.Errorf("reset: deleting topic %s: %w", t, rsp.Err)
			}
			pr("deleted topic %s\n", t)
		}
		if err := r.waitGone(ctx, p.Topics); err != nil {
			return err
		}
	}
	if len(p.Claims) > 0 {
		owners, err := kafka.NewOwners(kc)
		if err != nil {
			return err
		}
		released, err := owners.Release(ctx, kafka.ServeOwner(kc), p.Claims)
		owners.Close()
		if err != nil {
			return err
		}
		for _, t := range released {
			pr("released the claim on %s\n", t)
		}
	}
	if p.StateDir != "" {
		if err := os.RemoveAll(p.StateDir); err != nil {
			return fmt.Errorf("reset: deleting %s: %w", p.StateDir, err)
		}
		pr("deleted local state %s\n", p.StateDir)
	}
	return nil
}

// waitGone waits (up to a minute) until topics are no longer listed:
// Kafka deletes topics asynchronously, and the deployment's next start
// creates them again.
func (r *Resetter) waitGone(ctx context.Context, topics []string) error {
	deadline := time.Now().Add(time.Minute)
	for {
		details, err := r.adm.ListTopics(kadm.WithAuthorizedOps(ctx), topics...)
		if err != nil {
			return fmt.Errorf("reset: listing topics: %w", err)
		}
		var left []string
		for _, t := range topics {
			if d, ok := details[t]; ok && d.Err == nil {
				left = append(left, t)
			}
		}
		if len(left) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("reset: topics %v are still listed a minute after their deletion", left)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// removeMembers removes the group's static members and watches the group
// for LiveWait: a member that shows up again is a running instance.
func (r *Resetter) removeMembers(ctx context.Context, pr func(string, ...any)) error {
	kc := r.cfg.Kafka
	members, _, err := r.members(ctx)
	if err != nil {
		return err
	}
	if len(members) == 0 {
		return nil
	}
	var ids []string
	var dynamic []string
	for _, m := range members {
		if m.InstanceID == "" {
			dynamic = append(dynamic, m.String())
		} else {
			ids = append(ids, m.InstanceID)
		}
	}
	if len(dynamic) > 0 {
		return fmt.Errorf("%w: consumer group %s has dynamic members, running or stopped less than a session timeout (45 s) ago: %s; stop them (or wait) and try again",
			ErrLive, kc.GroupID, strings.Join(dynamic, ", "))
	}
	resps, err := r.adm.LeaveGroup(ctx, kadm.LeaveGroup(kc.GroupID).InstanceIDs(ids...).Reason("smartgroups reset"))
	if err == nil {
		err = resps.Error()
	}
	if err != nil && !errors.Is(err, kerr.UnknownMemberID) {
		return fmt.Errorf("reset: removing the static members %v of group %s: %w", ids, kc.GroupID, err)
	}
	pr("removed %d static member(s) of group %s; watching it for %v for a running instance\n", len(ids), kc.GroupID, r.cfg.LiveWait)
	deadline := time.Now().Add(r.cfg.LiveWait)
	for time.Now().Before(deadline) {
		back, _, err := r.members(ctx)
		if err != nil {
			return err
		}
		if len(back) > 0 {
			names := make([]string, len(back))
			for i, m := range back {
				names[i] = m.String()
			}
			slices.Sort(names)
			return fmt.Errorf("%w: consumer group %s has live members: %s; stop every instance of the deployment first",
				ErrLive, kc.GroupID, strings.Join(names, ", "))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
	return nil
}
