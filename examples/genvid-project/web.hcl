# The web front end (examples/web.yaml's job): started after the services by Start All.

job "web" {
  autostart    = true
  dependencies = ["services"]
}

# Each log is named like the loggerID of the task it reads (CARAVAN_LOGGER_ID in
# jobs.yaml), so `caravan logs front` and `caravan loglevel front http=debug` go together.
log "front" {
  job      = "web"
  group    = "front"
  task     = "front"
  fileName = "stdout"
  logLevel = true
}

# The same task's warnings and errors (the example task writes them to stderr).
log "frontErr" {
  job      = "web"
  group    = "front"
  task     = "front"
  fileName = "stderr"
}

log "worker" {
  job      = "web"
  group    = "worker"
  task     = "worker"
  fileName = "stdout"
  logLevel = true
}

link "web" {
  name     = "Tutorial"
  template = "http://{{env `GENVID_WEB`}}/"
}
