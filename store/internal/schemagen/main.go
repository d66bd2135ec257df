// Command schemagen writes the driver's schema, one SQL file per database, for a DBA who runs the
// driver with `migrate: false` (store.SchemaFiles: every embedded migration with its version row).
package main

import (
	"flag"
	"log"
	"os"
	"path/filepath"

	"github.com/rr-sql/sqljobs/store"
)

func main() {
	out := flag.String("out", "schema", "directory to write the files to")
	flag.Parse()
	files, err := store.SchemaFiles()
	if err != nil {
		log.Fatal(err)
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(*out, name), []byte(content), 0o644); err != nil {
			log.Fatal(err)
		}
	}
}
