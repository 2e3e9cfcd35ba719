"""flask_app.py — a Flask application served by prefork's WSGI server.

    PYTHONPATH=build/python python3 -m prefork --chdir examples/python -w 4 flask_app:app
    curl http://127.0.0.1:8000/hello/you
"""
import os

from flask import Flask, jsonify, request

app = Flask(__name__)


@app.get("/")
def index():
    return "Hello from Flask on prefork\n"


@app.get("/hello/<name>")
def hello(name):
    return jsonify(hello=name, worker=os.getpid())


@app.post("/echo")
def echo():
    return jsonify(length=len(request.get_data()), form=request.form.to_dict())
