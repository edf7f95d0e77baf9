# The web front end: started after the services by "start all".

job "web" {
  autostart    = true
  dependencies = ["services"]
}

log "web" {
  job      = "web"
  task     = "web"
  fileName = "stdout"
  logLevel = true
}

log "webErr" {
  job      = "web"
  task     = "web"
  fileName = "stderr"
}

link "web" {
  name     = "Tutorial"
  template = "http://{{env `GENVID_WEB`}}/"
}
