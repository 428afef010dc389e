"""The baseline: a bare FastAPI "hello world", served with the same Uvicorn flags as the API."""

from fastapi import FastAPI

app = FastAPI()


@app.get("/")
async def hello() -> dict[str, str]:
    return {"message": "Hello World"}
