"""Recipe: the pydantic models of a build recipe and the YAML loader with line-numbered errors."""

from tracekit.recipe.loader import LoadedRecipe, Problem, RecipeError, load_recipe
from tracekit.recipe.models import Recipe

__all__ = ["LoadedRecipe", "Problem", "Recipe", "RecipeError", "load_recipe"]
