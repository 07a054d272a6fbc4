package main

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/smartgroups/smartgroups/engine"
	"github.com/smartgroups/smartgroups/state"
)

// openStopped opens the state of a stopped deployment read-only, as one
// consistent snapshot: dir is a data directory of serve (its store is in
// dir/state) or of process --data-dir (the store itself).
func openStopped(dir string) (*state.Snapshot, string, error) {
	if dir == "" {
		return nil, "", errors.New("--data-dir is required")
	}
	storeDir := dir
	if _, err := os.Stat(filepath.Join(dir, "state", "LOCK")); err == nil {
		storeDir = filepath.Join(dir, "state")
	}
	if _, err := os.Stat(filepath.Join(storeDir, "LOCK")); err != nil {
		return nil, "", fmt.Errorf("%s holds no smartgroups state (a data directory of serve or process --data-dir)", dir)
	}
	snap, err := state.OpenSnapshot(storeDir)
	if errors.Is(err, state.ErrInUse) {
		return nil, "", fmt.Errorf("state directory %s is in use by a running smartgroups (stop it first, or export through the API)", dir)
	}
	if err != nil {
		return nil, "", fmt.Errorf("opening the state in %s: %w", dir, err)
	}
	return snap, storeDir, nil
}

func newExportCmd() *cobra.Command {
	var dataDir, spot, group, resource, format, what string
	cmd := &cobra.Command{
		Use:   "export --data-dir D [--spot S] [--group G] [--format ndjson|csv] [--what memberships|access]",
		Short: "Write the current memberships (or access) of a stopped deployment's state",
		Long: `Reads the state directory of a stopped serve (or of process --data-dir) through
one consistent snapshot and writes its current memberships to stdout, one per
line: spot, group, member, since, seq. since is when the member joined (empty
for a membership older than the membership history); seq is the seq of the
key's last event on the memberships topic.

--what access writes who has access to which linked resource instead: spot,
resource, member, seq (--resource narrows it to one resource).

--format ndjson (default) writes one JSON object per line; csv writes a header
line, then one row per line. Lines come in key order: partition, spot, then
member creation order.

The directory must not be in use: a running smartgroups holds it, and export
refuses it (read a live deployment through the HTTP API). A serve data
directory holds the partitions that instance owned, as of its last persisted
batch (a graceful stop persists everything committed).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) (err error) {
			if format != "ndjson" && format != "csv" {
				return fmt.Errorf("--format must be ndjson or csv, not %q", format)
			}
			if what != "memberships" && what != "access" {
				return fmt.Errorf("--what must be memberships or access, not %q", what)
			}
			if what == "access" && group != "" {
				return errors.New("--group narrows memberships; with --what access, use --resource")
			}
			if what == "memberships" && resource != "" {
				return errors.New("--resource narrows access; use it with --what access")
			}
			snap, _, err := openStopped(dataDir)
			if err != nil {
				return err
			}
			defer func() {
				if cerr := snap.Close(); cerr != nil && err == nil {
					err = cerr
				}
			}()
			rd, err := engine.NewStateReader(snap)
			if err != nil {
				return err
			}
			w := newRowWriter(cmd.OutOrStdout(), format)
			if what == "access" {
				w.header("spot", "resource", "member", "seq")
				err = rd.Access(spot, resource, func(a engine.AccessRow) error {
					return w.row(a, a.Spot, a.Resource, a.Member, strconv.FormatUint(a.Seq, 10))
				})
			} else {
				w.header("spot", "group", "member", "since", "seq")
				err = rd.Memberships(spot, group, func(m engine.Membership) error {
					return w.row(m, m.Spot, m.Group, m.Member, m.Since, strconv.FormatUint(m.Seq, 10))
				})
			}
			if err != nil {
				return err
			}
			return w.flush()
		},
	}
	f := cmd.Flags()
	f.StringVar(&dataDir, "data-dir", "", "data directory of a stopped serve or process (required)")
	f.StringVar(&spot, "spot", "", "only this spot")
	f.StringVar(&group, "group", "", "only this smart group (with --what memberships)")
	f.StringVar(&resource, "resource", "", "only this resource (with --what access)")
	f.StringVar(&format, "format", "ndjson", "output format: ndjson or csv")
	f.StringVar(&what, "what", "memberships", "what to export: memberships or access")
	return cmd
}

// rowWriter writes rows as NDJSON (the value) or CSV (the fields).
type rowWriter struct {
	buf *bufio.Writer
	csv *csv.Writer
	enc *json.Encoder
}

func newRowWriter(out io.Writer, format string) *rowWriter {
	w := &rowWriter{buf: bufio.NewWriterSize(out, 64<<10)}
	if format == "csv" {
		w.csv = csv.NewWriter(w.buf)
	} else {
		w.enc = json.NewEncoder(w.buf)
	}
	return w
}

func (w *rowWriter) header(fields ...string) {
	if w.csv != nil {
		_ = w.csv.Write(fields)
	}
}

func (w *rowWriter) row(v any, fields ...string) error {
	if w.csv != nil {
		return w.csv.Write(fields)
	}
	return w.enc.Encode(v)
}

func (w *rowWriter) flush() error {
	if w.csv != nil {
		w.csv.Flush()
		if err := w.csv.Error(); err != nil {
			return fmt.Errorf("writing csv: %w", err)
		}
	}
	if err := w.buf.Flush(); err != nil {
		return fmt.Errorf("writing the export: %w", err)
	}
	return nil
}

func newInspectCmd() *cobra.Command {
	var dataDir string
	cmd := &cobra.Command{
		Use:   "inspect --data-dir D member <spot>/<member> | group <spot>/<group> | stats",
		Short: "Print, as JSON, what a stopped deployment's state holds about a member, a group, or its partitions",
		Long: `Reads the state directory of a stopped serve (or of process --data-dir) through
one consistent snapshot and prints JSON:

  member <spot>/<member>  the member's stored profile, custom properties, form
                          answers, activity summary (counts per type, first and
                          last ts), smart groups with seq and since, access,
                          pending timer and newest history (the JSON of
                          GET /v1/spots/{spot}/members/{member})
  group <spot>/<group>    the group's definition as stored, its member count in
                          this directory's partitions and its blacklist size
  stats                   per partition: members, history entries, state bytes,
                          input positions, snapshot tag and clock; the number
                          of definitions and the store's disk size

Like export, it refuses a directory in use by a running smartgroups.`,
		Args: func(_ *cobra.Command, args []string) error {
			switch {
			case len(args) == 1 && args[0] == "stats":
				return nil
			case len(args) == 2 && (args[0] == "member" || args[0] == "group"):
				if spot, id, ok := strings.Cut(args[1], "/"); !ok || spot == "" || id == "" {
					return fmt.Errorf("%s: want <spot>/<id>, not %q", args[0], args[1])
				}
				return nil
			}
			return errors.New("want one of: member <spot>/<member>, group <spot>/<group>, stats")
		},
		RunE: func(cmd *cobra.Command, args []string) (err error) {
			snap, storeDir, err := openStopped(dataDir)
			if err != nil {
				return err
			}
			defer func() {
				if cerr := snap.Close(); cerr != nil && err == nil {
					err = cerr
				}
			}()
			rd, err := engine.NewStateReader(snap)
			if err != nil {
				return err
			}
			var v any
			switch args[0] {
			case "member":
				spot, id, _ := strings.Cut(args[1], "/")
				v, err = rd.Member(spot, id)
			case "group":
				spot, id, _ := strings.Cut(args[1], "/")
				v, err = rd.Group(spot, id)
			default:
				var s *engine.Stats
				if s, err = rd.Stats(); err == nil {
					s.DataDir, s.DiskBytes = storeDir, snap.DiskBytes()
					v = s
				}
			}
			if err != nil {
				return err
			}
			enc := json.NewEncoder(cmd.OutOrStdout())
			enc.SetIndent("", "  ")
			return enc.Encode(v)
		},
	}
	cmd.Flags().StringVar(&dataDir, "data-dir", "", "data directory of a stopped serve or process (required)")
	return cmd
}
