// Command authorizer is the API Gateway Lambda authorizer (AuthorizerFunction): it resolves the
// Authorization header's API key to its tenant.
// Configuration comes from the environment template.yaml sets; see
// internal/awsapp.
package main

import "github.com/longrun/longrun/internal/awsapp"

func main() { awsapp.Main("authorizer", (*awsapp.App).Authorizer) }
