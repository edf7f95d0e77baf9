# A Genvid project's services, in the shapes of Genvid's own project files.
# `caravan load examples/genvid-project/*` brings them over with the jobs of jobs.yaml.

job "services" {
  autostart = true
}

# The api task's stdout; its levels are those of loggerID "api" (`caravan loglevel api`).
log "api" {
  job      = "services"
  group    = "api"
  task     = "api"
  fileName = "stdout"
  logLevel = true
}

config {
  info {
    name        = "tutorial"
    description = "A Genvid tutorial project"
  }
  encode {
    input {
      width  = 1280
      height = 720
    }
    output {
      framerate = 30
    }
  }
}

secrets {
  disco {
    GENVID_DISCO_SECRET = "discosecret"
  }
  command {
    GENVID_COMMAND_SECRET = "commandsecret"
    akey                  = "avalue"
  }
}
