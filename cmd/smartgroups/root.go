package main

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "smartgroups",
		Short:         "Real-time smart groups (dynamic audience segments) from change streams",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newProcessCmd(), newServeCmd(), newDemoCmd(), newBenchCmd())
	root.AddCommand(newReplayCmd(), newResetCmd())
	root.AddCommand(newExportCmd(), newInspectCmd())
	for _, c := range root.Commands() {
		c.PreRunE = chainEnv(c.PreRunE)
	}
	return root
}

// envPrefix starts the environment variable of every flag.
const envPrefix = "SMARTGROUPS_"

// envName is the environment variable of a flag: SMARTGROUPS_<FLAG>, dashes
// replaced by underscores.
func envName(flag string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// chainEnv makes every flag settable by SMARTGROUPS_<FLAG> (dashes become
// underscores); a flag given on the command line wins. A SMARTGROUPS_
// variable that names no flag of any command stops the command before it
// starts anything (see checkEnv).
func chainEnv(next func(*cobra.Command, []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		if err := checkEnv(cmd.Root(), os.Environ()); err != nil {
			return err
		}
		var err error
		cmd.Flags().VisitAll(func(f *pflag.Flag) {
			if err != nil || f.Changed || f.Name == "help" {
				return
			}
			env := envName(f.Name)
			if v, ok := os.LookupEnv(env); ok {
				if serr := cmd.Flags().Set(f.Name, v); serr != nil {
					err = fmt.Errorf("%s=%q: %w", env, v, serr)
				}
			}
		})
		if err != nil || next == nil {
			return err
		}
		return next(cmd, args)
	}
}

// checkEnv reports every SMARTGROUPS_ variable of environ (KEY=VALUE
// entries) that names no flag of any subcommand of root, each with the
// variable of the nearest flag by edit distance. A misspelt variable would
// otherwise be ignored without a word: SMARTGROUPS_BROKER instead of
// SMARTGROUPS_BROKERS would start the embedded broker instead of using the
// cluster. A variable of another subcommand's flag (SMARTGROUPS_MEMBERS
// for serve) is accepted, so one environment can serve every command.
func checkEnv(root *cobra.Command, environ []string) error {
	var flags []string
	known := map[string]bool{}
	for _, c := range root.Commands() {
		c.Flags().VisitAll(func(f *pflag.Flag) {
			if f.Name != "help" && !known[envName(f.Name)] {
				known[envName(f.Name)] = true
				flags = append(flags, f.Name)
			}
		})
	}
	sort.Strings(flags)
	var unknown []string
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, envPrefix) && !known[name] {
			unknown = append(unknown, name)
		}
	}
	sort.Strings(unknown)
	var errs []error
	for _, name := range unknown {
		if len(flags) == 0 {
			errs = append(errs, fmt.Errorf("environment variable %s names no flag", name))
			continue
		}
		near := nearestFlag(name, flags)
		errs = append(errs, fmt.Errorf("environment variable %s names no flag of any command; did you mean %s (--%s)?", name, envName(near), near))
	}
	return errors.Join(errs...)
}

// nearestFlag returns the flag (of a sorted, non-empty list) whose
// environment variable is the fewest single-character edits away from env;
// ties go to the first in order.
func nearestFlag(env string, flags []string) string {
	best, bestDist := "", -1
	for _, f := range flags {
		if d := editDistance(env, envName(f)); bestDist < 0 || d < bestDist {
			best, bestDist = f, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
