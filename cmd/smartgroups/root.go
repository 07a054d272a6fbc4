package main

import (
	"fmt"
	"os"
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
	for _, c := range root.Commands() {
		c.PreRunE = chainEnv(c.PreRunE)
	}
	return root
}

// chainEnv makes every flag settable by SMARTGROUPS_<FLAG> (dashes become
// underscores); a flag given on the command line wins.
func chainEnv(next func(*cobra.Command, []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		var err error
		cmd.Flags().VisitAll(func(f *pflag.Flag) {
			if err != nil || f.Changed {
				return
			}
			env := "SMARTGROUPS_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
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
