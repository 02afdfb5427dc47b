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
- moto issue 10077 is worked around (see fix_10077), and three more Step
  Functions gaps (fix_callback_before_wait, fix_stop,
  fix_task_failure_cause);
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


def fix_callback_before_wait():
    """A waitForTaskToken task's token is valid once its message is sent.
    moto 5.2.1 sets up the task's heartbeat wait only after the send has
    returned and its events are written, so a worker that answers at once
    on receipt hits a window where
      - SendTaskHeartbeat gets InvalidToken, and
      - SendTaskSuccess/Failure is accepted but never seen: the heartbeat
        wait that starts after it sleeps a whole HeartbeatSeconds and then
        fails the task with States.HeartbeatTimeout.
    Step Functions has no such window: accept the early heartbeat (the
    heartbeat clock has not started, there is nothing to restart) and let
    a wait that starts after the outcome see it at once."""
    from moto.stepfunctions.parser.asl.eval.callback.callback import CallbackEndpoint

    notify_heartbeat = CallbackEndpoint.notify_heartbeat
    setup_heartbeat_endpoint = CallbackEndpoint.setup_heartbeat_endpoint

    def accept_early_heartbeat(self):
        if self._heartbeat_endpoint is None:
            return True
        return notify_heartbeat(self)

    def see_early_outcome(self, heartbeat_seconds):
        endpoint = setup_heartbeat_endpoint(self, heartbeat_seconds)
        if self.get_outcome() is not None:
            endpoint.notify()
        return endpoint

    CallbackEndpoint.notify_heartbeat = accept_early_heartbeat
    CallbackEndpoint.setup_heartbeat_endpoint = see_early_outcome


def fix_stop():
    """moto 5.2.1's StopExecution drops its error and cause; the execution
    stays RUNNING until the state it is in notices (a waitForTaskToken task:
    at its next heartbeat), and then ends FAILED with States.Timeout, as if
    the task had timed out. Step Functions makes the execution ABORTED with
    the stop's error and cause at once. moto still stops the program; this
    records the stop as Step Functions does, and keeps it."""
    import datetime

    from moto.stepfunctions.parser.api import ExecutionStatus
    from moto.stepfunctions.parser.backend.execution import BaseExecutionWorkerCommunication
    from moto.stepfunctions.responses import StepFunctionResponse

    stop_execution = StepFunctionResponse.stop_execution
    reflect = BaseExecutionWorkerCommunication._reflect_execution_status

    def record_stop(execution, stop):
        execution.exec_status = ExecutionStatus.ABORTED
        execution.stop_date, execution.error, execution.cause = stop

    def stop_as_aws(self):
        arn = self._get_param("executionArn")
        execution = self.stepfunction_backend.describe_execution(arn)
        running = getattr(execution, "exec_status", None) == ExecutionStatus.RUNNING
        result = stop_execution(self)
        if running:
            execution.awstest_stop = (
                datetime.datetime.now(tz=datetime.timezone.utc),
                self._get_param("error"),
                self._get_param("cause"),
            )
            record_stop(execution, execution.awstest_stop)
        return result

    def keep_stop(self):
        reflect(self)
        stop = getattr(self.execution, "awstest_stop", None)
        if stop is not None:
            record_stop(self.execution, stop)

    StepFunctionResponse.stop_execution = stop_as_aws
    BaseExecutionWorkerCommunication._reflect_execution_status = keep_stop


def fix_task_failure_cause():
    """moto 5.2.1's SendTaskFailure passes on the error but drops the
    cause; Step Functions gives the task both."""
    from moto.stepfunctions.responses import EmptyResult, StepFunctionResponse

    def send_task_failure(self):
        self.stepfunction_backend.send_task_failure(
            self._get_param("taskToken"), error=self._get_param("error"), cause=self._get_param("cause")
        )
        return EmptyResult()

    StepFunctionResponse.send_task_failure = send_task_failure


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
    fix_callback_before_wait()
    fix_stop()
    fix_task_failure_cause()
    serialize_dynamodb()
    forward_lambda()
    server = make_server("127.0.0.1", 0, DomainDispatcherApplication(create_backend_app), threaded=True)
    os.environ["MOTO_PORT"] = str(server.server_port)
    threading.Thread(target=exit_with_parent, daemon=True).start()
    print(f"awstest-moto-port {server.server_port} {moto.__version__}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
