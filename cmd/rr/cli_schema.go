package main

import (
	"fmt"

	"github.com/rr-sql/sqljobs/store"
	"github.com/spf13/cobra"
)

// schemaCommand prints the sql driver's schema migrations for a DBA (with `migrate: false`); it
// is this binary's own, the stock rr has no such command.
func schemaCommand() *cobra.Command {
	return &cobra.Command{
		Use:       "schema sqlite|postgres|mysql",
		Short:     "Print the sql jobs driver's schema migrations",
		Args:      cobra.ExactArgs(1),
		ValidArgs: []string{"sqlite", "postgres", "mysql"},
		RunE: func(_ *cobra.Command, args []string) error {
			script, err := store.SchemaSQL(args[0])
			if err != nil {
				return fmt.Errorf("%w (dialects: sqlite, postgres, mysql)", err)
			}
			fmt.Print(script)
			return nil
		},
	}
}
