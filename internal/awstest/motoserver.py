"""moto server for longrun's tests (internal/awstest, moto.go).

What `moto_server` does, plus what longrun's tests need from it:

- it listens on 127.0.0.1 port 0 and prints "awstest-moto-port <port>" once it
  accepts connections, and MOTO_PORT is set to that port before anything
  reads it: moto's Step Functions engine calls SQS and Lambda through boto3
  at http://localhost:$MOTO_PORT;
- Step Functions runs the definitions (stepfunctions.execute_state_machine)
  and Lambda runs without Docker (lambda.use_docker = false); each Lambda
  invocation is forwarded to AWSTEST_LAMBDA_URL/<function name>, where the
  test process answers it (moto's Docker-less Lambda would echo the payload);
- moto issue 10077 is worked around (see fix_10077);
- DynamoDB requests are applied one at a time (see serialize_dynamodb);
- it exits when its stdin closes, so it never outlives the test binary.

Exit status 3: moto cannot be imported by this interpreter.
"""

import copy
import logging
import os
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request

try:
    import moto
    from moto.core.config import default_user_config
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
except ImportError as err:  # the Go side tries the next interpreter
    print(f"awstest-moto-missing {err}", flush=True)
    sys.exit(3)

from werkzeug.serving import make_server


def fix_10077():
    """moto 5.2.1's Step Functions parser deep-copies the state machine on
    every StartExecution, with its list of executions; a running execution
    holds a threading.RLock, so every StartExecution after the first of a
    state machine fails with 500 ("cannot pickle '_thread.RLock' object",
    moto issue 10077, fixed upstream). The copy only needs the state
    machine's own settings: copy everything but the executions."""
    from moto.stepfunctions.models import StateMachineInstance

    def deepcopy_without_executions(self, memo):
        clone = self.__class__.__new__(self.__class__)
        memo[id(self)] = clone
        for key, value in self.__dict__.items():
            setattr(clone, key, [] if key == "executions" else copy.deepcopy(value, memo))
        return clone

    StateMachineInstance.__deepcopy__ = deepcopy_without_executions


def serialize_dynamodb():
    """moto's DynamoDB checks conditions and writes without a lock, and a
    canceled TransactWriteItems restores a snapshot of the whole table, so
    concurrent requests (moto's server is threaded) can both pass a
    condition, and a canceled transaction can undo other requests' writes.
    DynamoDB applies each request atomically and isolates transactions:
    run moto's DynamoDB requests one at a time to get that."""
    from moto.dynamodb.responses import DynamoHandler

    lock = threading.Lock()
    call_action = DynamoHandler.call_action

    def serialized(self):
        with lock:
            return call_action(self)

    DynamoHandler.call_action = serialized


def forward_lambda():
    """Answer Lambda invocations from the test process instead of echoing."""
    from moto.awslambda_simple.models import LambdaSimpleBackend

    base = os.environ["AWSTEST_LAMBDA_URL"]

    def invoke(self, function_name, qualifier, body, headers, response_headers):
        name = function_name.split(":function:")[-1].split(":")[0]
        data = body.encode() if isinstance(body, str) else (body or b"")
        req = urllib.request.Request(base + "/" + urllib.parse.quote(name), data=data, method="POST")
        req.add_header("X-Amz-Invocation-Type", headers.get("X-Amz-Invocation-Type") or "RequestResponse")
        try:
            with urllib.request.urlopen(req, timeout=900) as resp:
                error = resp.headers.get("X-Amz-Function-Error")
                payload = resp.read()
        except urllib.error.HTTPError as err:
            error, payload = "Unhandled", err.read()
        if error:
            response_headers["x-amz-function-error"] = error
        return payload

    LambdaSimpleBackend.invoke = invoke


def exit_with_parent():
    sys.stdin.read()
    os._exit(0)


def main():
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
    default_user_config["lambda"]["use_docker"] = False
    default_user_config["stepfunctions"]["execute_state_machine"] = True
    fix_10077()
    serialize_dynamodb()
    forward_lambda()
    server = make_server("127.0.0.1", 0, DomainDispatcherApplication(create_backend_app), threaded=True)
    os.environ["MOTO_PORT"] = str(server.server_port)
    threading.Thread(target=exit_with_parent, daemon=True).start()
    print(f"awstest-moto-port {server.server_port} {moto.__version__}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
