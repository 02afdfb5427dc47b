package longrun

import "embed"

// SAMFiles is this module's SAM application as the longrun binary carries it:
// template.yaml and the state machines it names (statemachine/*.asl.json).
// `longrun dev` runs it when no --template is given, so the command works
// from any directory, and `longrun init` derives a new project's template
// from it.
//
//go:embed template.yaml statemachine/*.asl.json
var SAMFiles embed.FS
