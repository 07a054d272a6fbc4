package main

import (
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/smartgroups/smartgroups/engine"
	"github.com/smartgroups/smartgroups/engine/rule"
	"github.com/smartgroups/smartgroups/internal/process"
)

func newProcessCmd() *cobra.Command {
	var (
		now, dataDir, deadFile, accessFile string
		batch                              int
		lim                                = engine.DefaultLimits()
	)
	cmd := &cobra.Command{
		Use:   "process [--now T] [--data-dir D] [--deadletter F] [--access-out F] < in.ndjson > out.ndjson",
		Short: "Run the engine over NDJSON files, without Kafka",
		Long: `Reads input records ({"topic","key","value"} per line) from stdin, applies
them strictly in order and writes membership events to stdout, one JSON object
per line. Dead letters go to --deadletter (default stderr); with --access-out,
the access events (grant/revoke per member and linked resource) go to that
file, one JSON object per line.

Without --now the clock is the event clock (the largest ts seen), so a replay
is deterministic. Without --data-dir the state lives in a temporary directory
and every run starts from nothing.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) (err error) {
			if err := checkLimits(lim); err != nil {
				return err
			}
			o := process.Options{DataDir: dataDir, BatchSize: batch, Limits: lim}
			if now != "" {
				t, err := rule.ParseTime(now)
				if err != nil {
					return fmt.Errorf("--now: %w", err)
				}
				o.Now, o.HasNow = t, true
			}
			var dead io.Writer = os.Stderr
			if deadFile != "" {
				f, err := os.Create(deadFile)
				if err != nil {
					return fmt.Errorf("--deadletter: %w", err)
				}
				dead = f
				defer func() {
					if cerr := f.Close(); cerr != nil && err == nil {
						err = fmt.Errorf("--deadletter: %w", cerr)
					}
				}()
			}
			if accessFile != "" {
				f, ferr := os.Create(accessFile)
				if ferr != nil {
					return fmt.Errorf("--access-out: %w", ferr)
				}
				o.Access = f
				defer func() {
					if cerr := f.Close(); cerr != nil && err == nil {
						err = fmt.Errorf("--access-out: %w", cerr)
					}
				}()
			}
			_, err = process.Run(cmd.Context(), o, cmd.InOrStdin(), cmd.OutOrStdout(), dead)
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&now, "now", "", "fix the clock at this instant (RFC 3339 or epoch milliseconds); default: event clock")
	f.StringVar(&dataDir, "data-dir", "", "state directory (default: a temporary directory, removed at exit)")
	f.StringVar(&deadFile, "deadletter", "", "file for dead letters (default: stderr)")
	f.StringVar(&accessFile, "access-out", "", "file for access events (grant/revoke of linked resources); default: not written")
	f.IntVar(&batch, "batch-size", 1000, "input records per committed batch")
	addLimitFlags(f, &lim)
	return cmd
}
