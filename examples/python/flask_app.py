"""flask_app.py — a Flask application served by prefork's WSGI server.

    PYTHONPATH=build/python python3 -m prefork --chdir examples/python -w 4 flask_app:app
    curl http://127.0.0.1:8000/hello/you
"""
import os

from flask import Flask, jsonify, request

import prefork

app = Flask(__name__)


@app.get("/")
def index():
    return "Hello from Flask on prefork\n"


@app.get("/hello/<name>")
def hello(name):
    return jsonify(hello=name, worker=prefork.worker_index(), pid=os.getpid())


@app.post("/echo")
def echo():
    return jsonify(length=len(request.get_data()), form=request.form.to_dict())
