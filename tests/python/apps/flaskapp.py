"""flaskapp.py — a small Flask application: routes, JSON, a form upload."""
import hashlib

from flask import Flask, jsonify, request

app = Flask(__name__)


@app.route("/")
def index():
    return "hello from flask"


@app.route("/ping")
def ping():
    return "pong"


@app.route("/user/<name>")
def user(name):
    return jsonify(name=name, args=request.args.to_dict())


@app.route("/json", methods=["POST"])
def echo_json():
    data = request.get_json()
    return jsonify(got=data, n=len(data))


@app.route("/upload", methods=["POST"])
def upload():
    f = request.files["file"]
    body = f.read()
    return jsonify(filename=f.filename, size=len(body), md5=hashlib.md5(body).hexdigest(),
                   field=request.form.get("field"))


def create_app():
    return app
