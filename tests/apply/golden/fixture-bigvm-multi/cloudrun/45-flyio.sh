#!/bin/sh
# flymigrate: removed Fly GPU driver shim: ldconfig
