# A Genvid project's services, in the shapes of Genvid's own project files.
# `caravan load services.hcl web.hcl` brings them over (the Jobs must exist already).

job "services" {
  autostart = true
}

log "services" {
  job      = "services"
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
