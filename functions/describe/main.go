// Command describe serves POST /describe-execution, GET /executions/{id} and GET
// /executions (DescribeFunction), from DynamoDB only.
// Configuration comes from the environment template.yaml sets; see
// internal/awsapp.
package main

import "github.com/longrun/longrun/internal/awsapp"

func main() { awsapp.Main("describe", (*awsapp.App).Describe) }
