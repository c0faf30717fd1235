"""seasonrec: season-aware recommendations and demand forecasts on Spark, Delta, Horovod and TensorFlow."""

from setuptools import find_packages, setup

setup(
    name="seasonrec",
    version="0.1.0",
    description="Season-aware recommender and demand forecasting job suite for Spark + Delta + Horovod",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.11,<3.12",
    package_dir={"": "lib"},
    packages=find_packages("lib"),
    include_package_data=True,
    package_data={"seasonrec": ["conf/*.yaml"]},
    install_requires=[
        "pyspark>=3.5,<3.6",
        "numpy>=1.26,<2",
        "pandas>=2.2,<2.3",
        "pyarrow>=14,<15",
        "petastorm==0.13.1",
        "deltalake>=1.0,<2",
        "pyyaml>=6",
        "pydantic>=2,<3",
        "holidays",
        "statsforecast>=2",
        "lightgbm>=4.7,<5",
        "mlflow-skinny",
        "matplotlib",
        "psutil",
        "cloudpickle",
    ],
    extras_require={
        # CPU TensorFlow for laptops/CI; GPU clusters install `[gpu]` and build Horovod with NCCL.
        "cpu": ["tensorflow-cpu==2.15.1"],
        "gpu": ["tensorflow==2.15.1"],
        "dev": ["pytest", "ruff"],
        # `mlflow models serve` and the model registry (SQLite store) need the full package.
        "serving": ["mlflow==3.17.2"],
    },
    entry_points={"console_scripts": ["seasonrec=seasonrec.cli:main"]},
)
