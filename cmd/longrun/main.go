// Command longrun is the longrun CLI; package cli holds all of it.
package main

import "github.com/longrun/longrun/cli"

func main() { cli.Main() }
