"""What tests of several packages share: the gateway with people signed in, servers, waiting (the
waiting itself is `runtime.testing.eventually`). Test packages import from here, never from each
other's conftest."""
